"""The floor: a bare smtplib loop sending pre-built message bytes.

    python bench/baseline_smtp.py --port P --message one.eml --list subscribers.csv [--threads 4]
        [--starttls --ca-file cert.pem] [--nodelay]

One connection per thread, reused for every message of that thread's share of
the list; the message bytes are built once and sent unchanged to each
address. Nothing is rendered, personalised or journaled: this is what the
machine and the SMTP server allow, which a real sender can only approach.

``--starttls`` upgrades each connection with STARTTLS, verifying the server
against ``--ca-file``, before the first message. ``--nodelay`` sets
TCP_NODELAY on each socket: without it, the last small TLS record of a
message can wait for the server's delayed ACK (Nagle's algorithm).
"""

from __future__ import annotations

import argparse
import csv
import smtplib
import socket
import ssl
import sys
import threading
from pathlib import Path


def read_addresses(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return [row["email"] for row in csv.DictReader(fh)]


def send_share(
    port: int, sender: str, addresses: list[str], data: bytes, errors: list[str],
    tls: ssl.SSLContext | None = None, nodelay: bool = False,
) -> None:
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
            if nodelay and smtp.sock is not None:
                smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                smtp.starttls(context=tls)
            for address in addresses:
                smtp.sendmail(sender, [address], data)
    except (OSError, smtplib.SMTPException) as exc:
        errors.append(f"{type(exc).__name__}: {exc}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--message", type=Path, required=True)
    parser.add_argument("--list", type=Path, required=True, dest="subscribers")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sender", default="newsletter@example.org")
    parser.add_argument("--starttls", action="store_true", help="STARTTLS before sending")
    parser.add_argument("--ca-file", type=Path, help="with --starttls: the CA file to verify the server against")
    parser.add_argument("--nodelay", action="store_true", help="set TCP_NODELAY on every socket")
    args = parser.parse_args(argv)
    tls = ssl.create_default_context(cafile=str(args.ca_file) if args.ca_file else None) if args.starttls else None

    raw = args.message.read_bytes()
    # smtplib sends bytes unchanged, so give it what belongs on the wire: CRLF line ends.
    data = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    addresses = read_addresses(args.subscribers)
    shares = [addresses[i :: args.threads] for i in range(args.threads)]
    errors: list[str] = []
    threads = [
        threading.Thread(target=send_share, args=(args.port, args.sender, share, data, errors, tls, args.nodelay))
        for share in shares
        if share
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
