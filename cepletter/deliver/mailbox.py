"""Where returned mail is read: an IMAP folder, a local Maildir or an mbox file.

Each source yields the messages it has not yielded before, as bytes cut at
``MAX_MESSAGE_BYTES`` (a bounce says what it has to say in its first
kilobytes; a 50 MB message must not take the memory with it), and remembers
what it read in a small state dict that the caller saves:

- IMAP: the folder's UIDVALIDITY and the highest UID read. Messages are read
  with ``BODY.PEEK`` (their flags stay as they were); when UIDVALIDITY
  changes, the server has renumbered the folder and it is read again.
- Maildir: the unique names of the messages read.
- mbox: a digest of each message read (an mbox has no stable names).

``finish`` marks the messages that were understood as read (IMAP ``\\Seen``,
Maildir flag ``S``) and, with ``move_to``, moves them into that folder. No
source ever deletes a message; an mbox is only read.
"""

from __future__ import annotations

import contextlib
import hashlib
import imaplib
import mailbox
import os
import re
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cepletter.config import BounceSettings, Settings
from cepletter.deliver import credentials
from cepletter.errors import MailboxError, UsageError

MAX_MESSAGE_BYTES = 4 * 1024 * 1024
PASSWORD_ENV = "CEPLETTER_IMAP_PASSWORD"
KEYRING_SERVICE = "cepletter-imap"
LOCAL_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True)
class Incoming:
    """One message as read: ``key`` names it in the source and the report."""

    key: str
    data: bytes  # at most MAX_MESSAGE_BYTES
    size: int  # the whole message's size

    @property
    def truncated(self) -> bool:
        return self.size > len(self.data)


class Source(Protocol):
    description: str
    state_key: str

    def read(self, state: dict[str, Any]) -> Iterator[Incoming]:
        """The messages not read before, by ``state`` (what `new_state` gave last time)."""
        ...

    def new_state(self) -> dict[str, Any]:
        """What to remember, once everything `read` gave has been dealt with."""
        ...

    def finish(self, understood: list[str], move_to: str | None) -> None:
        """Mark the ``understood`` messages read, and move them to ``move_to`` when given."""
        ...

    def close(self) -> None: ...


# ---------------------------------------------------------------- IMAP


def imap_password(bounces: BounceSettings) -> str:
    """The password for ``[bounces] username``: the environment first, then the keyring."""
    return credentials.password(PASSWORD_ENV, KEYRING_SERVICE, bounces.username or "", bounces.host or "", "IMAP",
                                MailboxError)


def tls_context(bounces: BounceSettings, settings: Settings) -> ssl.SSLContext:
    """Verify against the system store plus the optional private CA file."""
    return credentials.tls_context(bounces.ca_file, settings, "bounces", MailboxError)


def _quote(name: str) -> str:
    if not name.isascii() or any(c in name for c in "\r\n\0"):
        raise MailboxError(f"IMAP folder {name!r}: only plain ASCII folder names are supported",
                           "Give the folder's name as the server lists it, in ASCII.")
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _uid_set(uids: list[int]) -> str:
    """``[1, 2, 3, 7]`` → ``"1:3,7"``."""
    parts: list[str] = []
    ordered = sorted(set(uids))
    start = prev = ordered[0]
    for uid in [*ordered[1:], -1]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = uid
    return ",".join(parts)


def _text(data: Any) -> str:
    if isinstance(data, list):
        return " ".join(_text(d) for d in data if d is not None)
    if isinstance(data, tuple):
        return " ".join(_text(d) for d in data)
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return str(data)


_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


class ImapSource:
    """``[bounces]``: one folder on an IMAP server, TLS verified, read with BODY.PEEK."""

    def __init__(self, settings: Settings, *, readonly: bool = False) -> None:
        b = settings.bounces
        if not b.host:
            raise MailboxError(
                "cepletter.toml: [bounces] host: not set, and neither --maildir nor --mbox was given",
                'Add a [bounces] table with host, username and security = "ssl", or read a local '
                "mailbox with --maildir DIR or --mbox FILE.",
            )
        if not b.username:
            raise MailboxError("cepletter.toml: [bounces] username: not set",
                               "Add username = \"...\" under [bounces]: the login of the returned-mail mailbox.")
        if b.security == "none" and b.host.lower() not in LOCAL_HOSTS:
            raise MailboxError(
                f'cepletter.toml: [bounces] security = "none": the password would cross the network '
                f"unencrypted to {b.host}",
                'Use security = "ssl" (port 993) or "starttls" (port 143).',
            )
        self.settings = settings
        self.bounces = b
        self.readonly = readonly
        self.host = b.host
        self.port = b.imap_port
        self.folder = b.folder
        self.description = f"IMAP {b.username}@{b.host}:{self.port}/{b.folder} ({b.security})"
        self.state_key = f"imap://{b.username}@{b.host}:{self.port}/{b.folder}"
        self._password = imap_password(b)
        self._context = tls_context(b, settings) if b.security != "none" else None
        self._client: imaplib.IMAP4 | None = None
        self._uidvalidity = 0
        self._last_uid = 0
        self._read: list[int] = []
        self.notes: list[str] = []

    def _where(self) -> str:
        return f"{self.host}:{self.port}"

    def _connect(self) -> imaplib.IMAP4:
        b = self.bounces
        client: imaplib.IMAP4 | None = None
        try:
            if b.security == "ssl":
                client = imaplib.IMAP4_SSL(self.host, self.port, ssl_context=self._context, timeout=b.timeout)
            else:
                client = imaplib.IMAP4(self.host, self.port, timeout=b.timeout)
                if b.security == "starttls":
                    if "STARTTLS" not in client.capabilities:
                        raise MailboxError(f"{self._where()} does not offer STARTTLS",
                                           'Check [bounces] host and port, or use security = "ssl" for port 993.')
                    client.starttls(self._context)
            self._login(client)
            # What a server offers after the login (MOVE, UIDPLUS) is more than it showed before it.
            typ, caps = client.capability()
            if typ == "OK":
                client.capabilities = tuple(_text(caps).upper().split())
            return client
        except ssl.SSLCertVerificationError as exc:
            self._discard(client)
            raise MailboxError(
                f"{self._where()}: the IMAP server's certificate is not trusted: {exc.verify_message}",
                "If the server uses a private certificate authority, set [bounces] ca_file to its PEM file.",
            ) from None
        except ssl.SSLError as exc:
            self._discard(client)
            raise MailboxError(f"{self._where()}: TLS failed: {exc.reason or exc}",
                               'Check [bounces] security: "ssl" for port 993, "starttls" for 143.') from None
        except MailboxError:
            self._discard(client)
            raise
        except (imaplib.IMAP4.error, OSError) as exc:
            self._discard(client)
            reason = "unknown host" if isinstance(exc, socket.gaierror) else (
                getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)
            raise MailboxError(f"cannot read mail from {self._where()}: {self._safe(reason)}",
                               "Check [bounces] host, port and security, and that the server is reachable.") from None

    def _login(self, client: imaplib.IMAP4) -> None:
        user = self.bounces.username or ""
        password = self._password
        try:
            if "AUTH=PLAIN" in client.capabilities:
                # RFC 4616: UTF-8, so a password beyond ASCII works (LOGIN would refuse it).
                secret = f"\0{user}\0{password}".encode()
                client.authenticate("PLAIN", lambda _challenge: secret)
            else:
                client.login(user, password)
        except imaplib.IMAP4.error as exc:
            raise MailboxError(
                f"{self._where()} refused the login of {user}: {self._safe(str(exc))}",
                f"Check [bounces] username and the password in {PASSWORD_ENV} or the keyring.",
            ) from None

    def _safe(self, text: str) -> str:
        """Server text without the password, should a server echo it."""
        return "(reply withheld: it contains the password)" if self._password and self._password in text else text

    @staticmethod
    def _discard(client: imaplib.IMAP4 | None) -> None:
        if client is not None:
            with contextlib.suppress(Exception):
                client.shutdown()

    def _command(self, what: str, result: tuple[str, Any]) -> Any:
        typ, data = result
        if typ != "OK":
            raise MailboxError(f"{self._where()}: {what} failed: {self._safe(_text(data))}")
        return data

    def read(self, state: dict[str, Any]) -> Iterator[Incoming]:
        client = self._client = self._connect()
        try:
            typ, data = client.select(_quote(self.folder), readonly=self.readonly)
        except imaplib.IMAP4.error as exc:
            typ, data = "NO", [str(exc).encode()]
        if typ != "OK":
            raise MailboxError(f"{self._where()}: cannot open the folder {self.folder!r}: {_text(data)}",
                               "Check [bounces] folder (INBOX is the usual one).")
        uidvalidity = int(_text(client.response("UIDVALIDITY")[1][-1:]) or 0)
        last = int(state.get("last_uid", 0)) if state.get("uidvalidity") == uidvalidity else 0
        if state.get("uidvalidity") not in (None, uidvalidity):
            self.notes.append(f"{self.folder}: the server renumbered the folder (UIDVALIDITY changed), "
                              "so it is read again from the start")
        self._uidvalidity, self._last_uid = uidvalidity, last
        found = self._command("SEARCH", client.uid("SEARCH", f"UID {last + 1}:*"))
        uids = sorted(int(u) for u in _text(found).split() if u.isdigit() and int(u) > last)
        for uid in uids:
            data = self._command("FETCH", client.uid("FETCH", str(uid), f"(RFC822.SIZE BODY.PEEK[]<0.{MAX_MESSAGE_BYTES}>)"))
            body = b""
            size = 0
            for item in data:
                if isinstance(item, tuple) and len(item) == 2:
                    match = _SIZE.search(item[0])
                    size = int(match.group(1)) if match else len(item[1])
                    body = item[1]
            self._read.append(uid)
            self._last_uid = max(self._last_uid, uid)
            yield Incoming(f"uid {uid}", body, max(size, len(body)))

    def new_state(self) -> dict[str, Any]:
        return {"uidvalidity": self._uidvalidity, "last_uid": self._last_uid}

    def finish(self, understood: list[str], move_to: str | None) -> None:
        client = self._client
        uids = [int(key.split()[1]) for key in understood]
        if client is None or not uids:
            return
        uid_set = _uid_set(uids)
        self._command("STORE", client.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Seen)"))
        if move_to is None:
            return
        target = _quote(move_to)
        typ, listed = client.list('""', target)
        if typ != "OK" or not any(item for item in listed if item):
            self._command(f"CREATE {move_to}", client.create(target))
        if "MOVE" in client.capabilities:
            self._command(f"MOVE to {move_to}", client.uid("MOVE", uid_set, target))
            return
        # No MOVE (RFC 6851): copy, then flag the originals \Deleted. Only with UIDPLUS can
        # exactly these be expunged; without it other messages flagged \Deleted would go too.
        self._command(f"COPY to {move_to}", client.uid("COPY", uid_set, target))
        self._command("STORE", client.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Deleted)"))
        if "UIDPLUS" in client.capabilities:
            self._command("EXPUNGE", client.uid("EXPUNGE", uid_set))

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.logout()
            self._discard(client)


# ---------------------------------------------------------------- Maildir


def _read_file(path: Path) -> tuple[bytes, int]:
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        return fh.read(MAX_MESSAGE_BYTES), size


def _check_folder_name(name: str) -> None:
    if not name or name.startswith(".") or "/" in name or "\0" in name:
        raise UsageError(f"--move-to {name!r}: not a folder name", "Give a plain name such as Processed.")


class MaildirSource:
    """A Maildir (``new/``, ``cur/``): messages are files; flags and moves are renames."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"Maildir {path}"
        self.state_key = f"maildir:{path.resolve()}"
        if not all((path / sub).is_dir() for sub in ("new", "cur")):
            raise MailboxError(f"{path}: not a Maildir (no new/ and cur/ folders in it)",
                               "Give the folder that holds new/, cur/ and tmp/.")
        self._present: dict[str, Path] = {}
        self._seen: set[str] = set()
        self._read: list[str] = []

    def _messages(self) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for sub in ("new", "cur"):
            for entry in sorted(os.scandir(self.path / sub), key=lambda e: e.name):
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue
                found.setdefault(entry.name.split(":", 1)[0], Path(entry.path))
        return found

    def read(self, state: dict[str, Any]) -> Iterator[Incoming]:
        seen = self._seen = set(state.get("read", []))
        try:
            self._present = self._messages()
        except OSError as exc:
            raise MailboxError(f"{self.path}: cannot read the Maildir: {exc.strerror}") from None
        for key, path in self._present.items():
            if key in seen:
                continue
            try:
                data, size = _read_file(path)
            except FileNotFoundError:
                continue  # moved by a mail client meanwhile
            except OSError as exc:
                raise MailboxError(f"{path}: cannot read the message: {exc.strerror}") from None
            self._read.append(key)
            yield Incoming(key, data, size)

    def new_state(self) -> dict[str, Any]:
        # Names no longer in the folder (moved or deleted by a mail client) are forgotten.
        return {"read": sorted((self._seen & set(self._present)) | set(self._read))}

    def finish(self, understood: list[str], move_to: str | None) -> None:
        target = None
        if move_to is not None:
            _check_folder_name(move_to)
            target = self.path / f".{move_to}"
            for sub in ("tmp", "new", "cur"):
                (target / sub).mkdir(parents=True, exist_ok=True)
        for key in understood:
            path = self._present.get(key)
            if path is None:
                continue
            name = path.name
            base, _, info = name.partition(":")
            flags = info[2:] if info.startswith("2,") else ""
            if "S" not in flags:
                flags = "".join(sorted(flags + "S"))
            folder = target if target is not None else self.path
            new_path = folder / "cur" / f"{base}:2,{flags}"
            try:
                os.rename(path, new_path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise MailboxError(f"{path}: cannot mark the message as read: {exc.strerror}") from None

    def close(self) -> None:
        pass


# ---------------------------------------------------------------- mbox


class MboxSource:
    """An mbox file, only read: which messages were read is kept by their digest."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"mbox {path}"
        self.state_key = f"mbox:{path.resolve()}"
        if not path.is_file():
            raise MailboxError(f"{path}: no such mbox file", "Give the path of an mbox file.")
        self._present: set[str] = set()
        self._read: list[str] = []

    def read(self, state: dict[str, Any]) -> Iterator[Incoming]:
        seen = set(state.get("read", []))
        try:
            box = mailbox.mbox(self.path, factory=None, create=False)
            keys = list(box.iterkeys())
        except (OSError, mailbox.Error) as exc:
            raise MailboxError(f"{self.path}: cannot read the mbox: {exc}") from None
        for key in keys:
            fh = box.get_file(key)
            try:
                data = fh.read(MAX_MESSAGE_BYTES)
                fh.seek(0, 2)
                size = fh.tell()
            finally:
                fh.close()
            digest = hashlib.sha256(data + str(size).encode()).hexdigest()[:32]
            if digest in self._present:
                digest += f".{key}"  # the same message twice in one file: read both
            self._present.add(digest)
            if digest in seen:
                continue
            self._read.append(digest)
            yield Incoming(digest, data, size)

    def new_state(self) -> dict[str, Any]:
        return {"read": sorted(self._present)}

    def finish(self, understood: list[str], move_to: str | None) -> None:
        if move_to is not None:
            raise UsageError("--move-to works with IMAP and Maildir, not an mbox file (it is only read)")

    def close(self) -> None:
        pass


def open_source(settings: Settings, *, maildir: Path | None = None, mbox: Path | None = None,
                move_to: str | None = None, readonly: bool = False) -> Source:
    """The mailbox to read: ``maildir`` or ``mbox`` when given, else ``[bounces]`` over IMAP."""
    if maildir is not None and mbox is not None:
        raise UsageError("give --maildir or --mbox, not both")
    if move_to is not None and mbox is not None:
        raise UsageError("--move-to works with IMAP and Maildir, not an mbox file (it is only read)")
    if move_to is not None and maildir is not None:
        _check_folder_name(move_to)
    if maildir is not None:
        return MaildirSource(maildir)
    if mbox is not None:
        return MboxSource(mbox)
    return ImapSource(settings, readonly=readonly)
