"""Real mail servers for the bounce tests: a private Postfix and a private Dovecot on 127.0.0.1.

    with Postfix(mailboxes={"anna@example.com": "anna"}, catch_all={"example.org": "returned"},
                 errors={"gone@example.com": "5.1.1 User unknown"}) as relay:
        ... send through relay.port ...
        relay.wait_for("returned", 2)      # the Maildir relay.maildir("returned") holds 2 messages

Postfix accepts every recipient of its domains. Known ones are delivered into
Maildirs by virtual(8); an unknown one is bounced by virtual(8) ("unknown
user", 5.1.1), and an address in ``errors`` by the error(8) transport: both
return a real RFC 3464 report to the envelope sender, which Postfix then
delivers like any mail (into the catch-all Maildir of its domain).

    with Dovecot(cert, maildir) as imap:   # serves ``maildir`` (default: one of its own) as imap.user's INBOX
        imap.imaps_port, imap.imap_port     # implicit TLS, and STARTTLS

Both run from a throwaway configuration in a folder of their own under the
system's temporary folder (the daemons' users must be able to reach it), on
free loopback ports, and are stopped and removed afterwards. They need the
Debian packages postfix and dovecot-imapd, and root (the daemons drop to their
own users): without them the tests skip, except in CI, where they fail.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from conftest import missing
from smtpservers import ServerCert

HOST = "127.0.0.1"
MAIL_UID = MAIL_GID = 65534  # nobody: owns the delivered mail, which Dovecot then reads as the same user


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((HOST, port), 1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def require(program: str, package: str) -> str:
    path = shutil.which(program) or (f"/usr/sbin/{program}" if os.path.exists(f"/usr/sbin/{program}") else None)
    if path is None:
        missing(f"{program} is not installed (Debian package {package})")
    if os.geteuid() != 0:
        missing(f"{program} runs its private instance as root, and these tests are not root")
    return path


def _server_folder(prefix: str) -> Path:
    # Not under $TMPDIR, which may be private: the daemons' own users must reach this folder.
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp" if os.path.isdir("/tmp") else None))
    folder.chmod(0o755)
    return folder


def count_messages(maildir: Path) -> int:
    return sum(1 for sub in ("new", "cur") if (maildir / sub).is_dir() for _ in (maildir / sub).iterdir())


# ---------------------------------------------------------------- Postfix

_MASTER = """\
{listen} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""


class Postfix:
    """A private Postfix relay on a free loopback port (see the module docstring)."""

    def __init__(self, *, mailboxes: Mapping[str, str] | None = None, catch_all: Mapping[str, str] | None = None,
                 errors: Mapping[str, str] | None = None) -> None:
        self.program = require("postfix", "postfix")
        self.mailboxes = dict(mailboxes or {})
        self.catch_all = dict(catch_all or {})
        self.errors = dict(errors or {})
        self.port = free_port()
        self.folder = _server_folder("cepletter-postfix-")
        self.etc = self.folder / "etc"
        self.mail = self.folder / "mail"
        self.log = self.folder / "maillog"

    def maildir(self, name: str) -> Path:
        return self.mail / name

    def _configure(self) -> None:
        d = self.folder
        self.etc.mkdir()
        (d / "queue").mkdir()
        postfix = pwd.getpwnam("postfix")
        (d / "data").mkdir()
        os.chown(d / "data", postfix.pw_uid, postfix.pw_gid)
        self.mail.mkdir()
        os.chown(self.mail, MAIL_UID, MAIL_GID)
        domains = sorted({a.rpartition("@")[2] for a in self.mailboxes} | set(self.catch_all)
                         | {a.rpartition("@")[2] for a in self.errors})
        lines = [f"{address} {name}/" for address, name in self.mailboxes.items()]
        lines += [f"@{domain} {name}/" for domain, name in self.catch_all.items()]
        (self.etc / "mailboxes").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (self.etc / "transport").write_text(
            "".join(f"{address} error:{reason}\n" for address, reason in self.errors.items()), encoding="utf-8")
        (self.etc / "main.cf").write_text(
            f"""compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
meta_directory = /etc/postfix
myhostname = relay.example.net
mydomain = example.net
inet_interfaces = {HOST}
inet_protocols = ipv4
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_reject_unlisted_recipient = no
virtual_mailbox_domains = {", ".join(domains)}
virtual_mailbox_base = {self.mail}
virtual_mailbox_maps = texthash:{self.etc}/mailboxes
virtual_uid_maps = static:{MAIL_UID}
virtual_gid_maps = static:{MAIL_GID}
virtual_minimum_uid = 1
transport_maps = texthash:{self.etc}/transport
recipient_delimiter = +
smtputf8_enable = no
maillog_file = {self.log}
maillog_file_prefixes = {d}
smtp_dns_support_level = disabled
biff = no
""",
            encoding="utf-8",
        )
        (self.etc / "master.cf").write_text(_MASTER.format(listen=f"{HOST}:{self.port}"), encoding="utf-8")

    def start(self) -> Postfix:
        self._configure()
        done = subprocess.run([self.program, "-c", str(self.etc), "start"], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=60)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            self._remove()
            raise RuntimeError(f"postfix did not start: {done.stdout}{done.stderr}{log[-2000:]}")
        wait_for_port(self.port)
        return self

    def wait_for(self, name: str, count: int, timeout: float = 60.0) -> Path:
        """Wait until the Maildir ``name`` holds ``count`` messages (or fail, showing the log)."""
        maildir = self.maildir(name)
        deadline = time.monotonic() + timeout
        while count_messages(maildir) < count:
            if time.monotonic() > deadline:
                log = self.log.read_text(errors="replace") if self.log.exists() else ""
                raise AssertionError(f"{maildir}: {count_messages(maildir)} of {count} messages; log:\n{log[-4000:]}")
            time.sleep(0.05)
        return maildir

    def stop(self) -> None:
        master_pid = self.folder / "queue" / "pid" / "master.pid"
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            subprocess.run([self.program, "-c", str(self.etc), "stop"], capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=60)
        deadline = time.monotonic() + 30
        while master_pid.exists() and time.monotonic() < deadline:
            try:
                pid = int(master_pid.read_text().split()[0])
                os.kill(pid, 0)
            except (ValueError, IndexError, ProcessLookupError, FileNotFoundError):
                break
            time.sleep(0.05)
        self._remove()

    def _remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Postfix:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------- Dovecot


class Dovecot:
    """A private Dovecot IMAP server serving one Maildir as the INBOX of one user."""

    def __init__(self, cert: ServerCert, maildir: Path | None = None, *, user: str = "bounces@example.org",
                 password: str = "Pässwort 1") -> None:
        self.program = require("dovecot", "dovecot-imapd")
        self.cert = cert
        self.user = user
        self.password = password
        self.imap_port = free_port()
        self.imaps_port = free_port()
        self.folder = _server_folder("cepletter-dovecot-")
        self.maildir = maildir or self.folder / "mail"
        self.process: subprocess.Popen[bytes] | None = None

    def _configure(self) -> Path:
        d = self.folder
        tls = d / "tls"
        tls.mkdir()
        shutil.copy(self.cert.cert, tls / "cert.pem")
        shutil.copy(self.cert.key, tls / "key.pem")
        for sub in ("", "new", "cur", "tmp"):
            path = self.maildir / sub
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, MAIL_UID, MAIL_GID)
        parent = self.maildir.parent
        parent.chmod(parent.stat().st_mode | 0o755)
        (d / "users").write_text(f"{self.user}:{{PLAIN}}{self.password}:{MAIL_UID}:{MAIL_GID}::{self.maildir}::\n",
                                 encoding="utf-8")
        conf = d / "dovecot.conf"
        conf.write_text(
            f"""base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = {HOST}
ssl = yes
ssl_cert = <{tls}/cert.pem
ssl_key = <{tls}/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
first_valid_uid = 1
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:{self.maildir}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/users
}}
userdb {{
  driver = passwd-file
  args = {d}/users
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {HOST}
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
""",
            encoding="utf-8",
        )
        return conf

    def start(self) -> Dovecot:
        conf = self._configure()
        self.process = subprocess.Popen([self.program, "-F", "-c", str(conf)], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(self.imaps_port)
            wait_for_port(self.imap_port)
        except OSError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
