"""A private Postfix instance for the benchmark: its own configuration, queue and Maildir under bench/work/.

    python bench/postfix.py [--port 0]     # start one, print its port, stop it on Enter

It listens on 127.0.0.1 only, offers STARTTLS with the benchmark's
certificate, and delivers mail for the test domain (example.org) with
Postfix's virtual(8) agent into one Maildir, whoever the recipient. It never
relays: it has no route to any other domain. The system's own Postfix (if
any) is not touched: this instance has its own configuration directory,
queue, data directory and master lock.

Postfix's `postfix start` must run as root (the master opens its queue as
root and runs its daemons as the `postfix` user); ``unavailable()`` says why
an instance cannot be made here.
"""

from __future__ import annotations

import argparse
import contextlib
import grp
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

DOMAIN = "example.org"
POSTFIX = "/usr/sbin/postfix"
QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")

_MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
{listen}  inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

_MAIN_CF = """\
# A private benchmark instance: loopback only, final destination for {domain}, no relaying.
compatibility_level = 3.6
queue_directory = {root}/spool
data_directory = {root}/data
mail_owner = {owner}
setgid_group = {setgid}
myhostname = bench-postfix.localdomain
mydomain = localdomain
myorigin = $myhostname
mydestination =
relayhost =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = reject_unauth_destination
default_transport = error:this benchmark instance delivers to {domain} only
relay_transport = error:this benchmark instance delivers to {domain} only
alias_maps =
alias_database =
local_recipient_maps =
biff = no
maillog_file_prefixes = {root}
maillog_file = {root}/maillog
smtpd_banner = $myhostname ESMTP
# Every address at {domain} goes to one Maildir (the trailing slash means Maildir).
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = static:inbox/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_minimum_uid = {uid}
smtpd_tls_chain_files = {key}, {cert}
smtpd_tls_security_level = may
smtpd_tls_loglevel = 0
"""


def unavailable() -> str | None:
    """Why a private Postfix cannot run here, or None when it can."""
    if not Path(POSTFIX).exists() and shutil.which("postfix") is None:
        return "Postfix is not installed (Debian: apt-get install postfix)"
    if os.geteuid() != 0:
        return "starting a Postfix instance needs root (`postfix start` refuses other users)"
    try:
        pwd.getpwnam("postfix")
        grp.getgrnam("postdrop")
    except KeyError:
        return "the postfix user or the postdrop group does not exist"
    return None


def closed_parent(root: Path) -> Path | None:
    """A folder above ``root`` that other users cannot enter (Postfix's daemons run as postfix), or None."""
    for folder in root.resolve().parents:
        if folder.exists() and not folder.stat().st_mode & 0o001:
            return folder
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivatePostfix:
    """One instance under ``root``: ``start()``, ``clear()``, ``wait_delivered(n)``, ``stop()``."""

    def __init__(self, root: Path, cert: Path, key: Path, port: int = 0) -> None:
        self.root = root.resolve()
        self.conf = self.root / "etc"
        self.inbox = self.root / "mail" / "inbox"
        self.port = port or free_port()
        self.cert, self.key = cert.resolve(), key.resolve()
        self.running = False

    def _postfix(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([shutil.which("postfix") or POSTFIX, "-c", str(self.conf), *args],
                              capture_output=True, text=True, check=False, timeout=120)
        if check and proc.returncode != 0:
            said = (proc.stderr or proc.stdout).strip()[-800:] or self.log_tail(3)
            raise RuntimeError(f"postfix {' '.join(args)} failed: {said}")
        return proc

    def configure(self) -> None:
        owner = pwd.getpwnam("postfix")
        closed = closed_parent(self.root)
        if closed is not None:
            raise RuntimeError(f"{closed} is closed to other users, so Postfix's daemons cannot reach "
                               f"{self.root}; put the instance in a folder they can enter")
        if self.root.exists():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                if (self.root / "spool" / "pid" / "master.pid").exists():
                    self._postfix("abort", check=False)
            shutil.rmtree(self.root)
        self.conf.mkdir(parents=True)
        for name in ("spool", "data"):
            (self.root / name).mkdir()
        (self.root / "data").chmod(0o700)
        os.chown(self.root / "data", owner.pw_uid, owner.pw_gid)
        for sub in ("tmp", "new", "cur"):
            (self.inbox / sub).mkdir(parents=True)
        for path in (self.root / "mail", self.inbox, *(self.inbox / s for s in ("tmp", "new", "cur"))):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        (self.conf / "main.cf").write_text(_MAIN_CF.format(
            root=self.root, owner="postfix", setgid="postdrop", domain=DOMAIN, uid=owner.pw_uid,
            gid=owner.pw_gid, cert=self.cert, key=self.key,
        ), encoding="utf-8")
        (self.conf / "master.cf").write_text(_MASTER_CF.format(listen=f"127.0.0.1:{self.port}"), encoding="utf-8")
        # Postfix's own tool makes the queue folders with the owners and modes it checks for.
        self._postfix("check")

    def start(self) -> None:
        self.configure()
        self._postfix("start")
        self.running = True
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                if sock.recv(512).startswith(b"220"):
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the private Postfix did not answer on 127.0.0.1:{self.port}: {self.log_tail()}")

    def stop(self) -> None:
        if not self.running:
            return
        pid = self._master_pid()
        self._postfix("stop", check=False)
        self.running = False
        deadline = time.monotonic() + 20
        while pid and time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)

    def _master_pid(self) -> int:
        try:
            return int((self.root / "spool" / "pid" / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return 0

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = (self.root / "maillog").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "no maillog"
        return " | ".join(text.strip().splitlines()[-lines:])

    def queued(self) -> int:
        """Messages still in Postfix's queue folders."""
        total = 0
        for queue in QUEUES:
            for _dirpath, _dirs, files in os.walk(self.root / "spool" / queue):
                total += len(files)
        return total

    def clear(self) -> None:
        """Empty the Maildir (between runs)."""
        for sub in ("new", "cur", "tmp"):
            for path in (self.inbox / sub).iterdir():
                path.unlink()

    def wait_delivered(self, count: int, timeout: float = 300.0) -> Counter[str]:
        """Wait until ``count`` messages are in the Maildir and the queue is empty; recipients and their counts.

        Each message's recipient is its Delivered-To header, which virtual(8) adds.
        """
        deadline = time.monotonic() + timeout
        new = self.inbox / "new"
        while time.monotonic() < deadline:
            if self.queued() == 0 and sum(1 for _ in new.iterdir()) >= count:
                break
            time.sleep(0.05)
        time.sleep(0.2)  # nothing may arrive late: a message counted twice shows here
        found: Counter[str] = Counter()
        for path in new.iterdir():
            found[_delivered_to(path)] += 1
        return found

    def __enter__(self) -> PrivatePostfix:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _delivered_to(path: Path) -> str:
    with path.open("rb") as fh:
        for line in fh:
            if line in (b"\n", b"\r\n"):
                break
            if line[:13].lower() == b"delivered-to:":
                return line[13:].strip().decode("ascii", "replace").lower()
    return ""


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench import tlscert

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent / "work" / "postfix")
    args = parser.parse_args(argv)
    reason = unavailable()
    if reason:
        print(f"cannot start Postfix: {reason}", file=sys.stderr)
        return 1
    cert = tlscert.certificate(args.root.parent / "tls")
    with PrivatePostfix(args.root, cert.cert, cert.key, args.port) as instance:
        print(f"PORT {instance.port}", flush=True)
        sys.stdin.readline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
