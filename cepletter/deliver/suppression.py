"""Adding addresses to the suppression list (``suppressed.csv``): after a send, and from bounces.

    from cepletter.deliver import suppression

    if suppression.address_gone(result.reply):            # "550 5.1.1 No such user"
        added = suppression.add(path, [suppression.Entry(
            result.email, suppression.UNKNOWN_ADDRESS, issue="2025-12", reply=result.reply)])

``add`` writes each new address as a row with its reason, the date, the issue
and the server's reply. It keeps what the person who keeps the file wrote: its
encoding and byte-order mark, separator, line ends, columns, comment lines and
every existing byte. Columns ``reason``, ``date``, ``issue`` and ``reply`` are
added to the header row when it has no column of that name. The file is
replaced atomically (readers see the old or the new list, never half) under a
lock on its folder, so a send and a bounce run cannot lose each other's rows.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from cepletter.errors import SubscriberError
from cepletter.fsutil import atomic_write_bytes
from cepletter.message.subscribers import (
    decode_line,
    email_key,
    guess_delimiter,
    header_key,
    is_email_header,
    read_suppressed,
    sniff_encoding,
)

UNKNOWN_ADDRESS = "address unknown"  # the mailbox does not exist (5.1.1 and kin)
COLUMNS = ("reason", "date", "issue", "reply")


@dataclass(frozen=True)
class Entry:
    """One address to suppress. ``reason`` is free text; ``date`` (YYYY-MM-DD) is today when empty."""

    email: str
    reason: str
    issue: str = ""
    reply: str = ""
    date: str = ""


# ---------------------------------------------------------------- which refusals mean "gone"

# RFC 3463: X.1.1 bad destination mailbox, X.1.0 other address status, X.1.10 null MX
# (RFC 7505), X.2.1 mailbox disabled. X.7.x is policy or spam: never a dead address.
_GONE_STATUS = frozenset({(1, 0), (1, 1), (1, 10), (2, 1)})
_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)")
_BASIC = re.compile(r"^\s*(?:smtp\s*;\s*)?([2-5])\d\d(?![\d.])", re.IGNORECASE)
_WHO = r"(?:user|recipient|mailbox|address|account)"
_UNKNOWN_TEXT = re.compile(
    rf"\b{_WHO}\s+(?:is\s+)?(?:unknown|not\s+found)\b"
    rf"|\bunknown\s+{_WHO}\b"
    rf"|\bno\s+such\s+(?:{_WHO}|person)\b"
    rf"|\b{_WHO}\b[^.;:]{{0,40}}\b(?:does\s*n[o']t|no\s+longer)\s+exists?\b"
    r"|\bno\s+mailbox\s+here\b"
    r"|\binvalid\s+(?:recipient|mailbox)\b"
    r"|\b(?:mailbox|account)\s+(?:is\s+|has\s+been\s+)?disabled\b",
    re.IGNORECASE,
)
_SENDER = re.compile(r"\bsender\b|\bmail\s+from\b", re.IGNORECASE)


def address_gone(reply: str) -> bool:
    """Whether a server's reply says the recipient's address does not exist (any more).

    ``reply`` is a reply as journaled ("550 5.1.1 <a@example.org>: User unknown"),
    a DSN ``Status`` ("5.1.1") or ``Diagnostic-Code`` ("smtp; 550 ..."). True for
    the enhanced codes 5.1.0, 5.1.1, 5.1.10 and 5.2.1, and for a permanent
    refusal without one (or with 5.0.0) whose text says the user is unknown. A
    policy or spam refusal (5.7.x), a full mailbox or a temporary error is not.
    """
    basic = _BASIC.match(reply)
    if basic is not None and basic.group(1) != "5":
        return False
    enhanced = _ENHANCED.search(reply)
    if enhanced is not None:
        klass, subject, detail = (int(g) for g in enhanced.groups())
        if klass != 5:
            return False
        if (subject, detail) in _GONE_STATUS:
            return True
        if (subject, detail) != (0, 0):
            return False
    elif basic is None:
        return False
    return bool(_UNKNOWN_TEXT.search(reply)) and not _SENDER.search(reply)


# ---------------------------------------------------------------- writing

# Names under which a header may already hold one of our columns.
_SYNONYMS = {
    "reason": frozenset({"reason", "grund", "raison", "motif", "reden", "motivo"}),
    "date": frozenset({"date", "datum", "fecha", "data", "dateadded", "added"}),
    "issue": frozenset({"issue"}),
    "reply": frozenset({"reply", "serverreply", "smtpreply", "response", "antwort", "reponse", "antwoord",
                        "respuesta", "risposta"}),
}
_LINE_END = re.compile(r"(?<=\n)|(?<=\r)(?!\n)")
_FORMULA = ("=", "+", "-", "@")  # a cell a spreadsheet would run as a formula


def add(path: Path, entries: Iterable[Entry]) -> list[Entry]:
    """Add the addresses not yet in the list at ``path``; return those added (dates filled in).

    A missing file is created with a header row. Raises SubscriberError when
    the list cannot be read (it is never overwritten then) or written.
    """
    if path.is_symlink():
        path = path.resolve()  # the person's file, not the link to it
    try:
        with _locked(path.parent):
            known = read_suppressed(path) if path.exists() else set()
            today = date.today().isoformat()
            new: list[Entry] = []
            for entry in entries:
                key = email_key(entry.email)
                if not key or key in known:
                    continue
                known.add(key)
                new.append(replace(entry, email=entry.email.strip(), date=entry.date or today))
            if new:
                raw = path.read_bytes() if path.exists() else b""
                atomic_write_bytes(path, _with_rows(path, raw, new))
    except OSError as exc:
        raise SubscriberError(
            f"{path}: cannot add to the suppression list: {exc.strerror or exc}",
            "Fix the problem (permissions, disk space); the addresses are named in the delivery journal.",
        ) from None
    return new


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def _with_rows(path: Path, raw: bytes, entries: list[Entry]) -> bytes:
    """``raw`` with a row per entry, its header given any missing column; nothing else changed."""
    encoding = sniff_encoding(raw[:4096])
    body = raw[len(encoding.bom):]
    if encoding.ascii_compatible:
        # Latin-1 maps each byte to one character and back: the existing bytes stay as they are,
        # whatever mix of UTF-8 and Windows-1252 they are, and only the new text is encoded.
        text = body.decode("latin-1")
        lines = [line for line in _LINE_END.split(text) if line]
        target = "utf-8" if encoding.bom or _writes_utf8(lines) else "cp1252"

        def real(line: str) -> str:
            return decode_line(line.encode("latin-1"))[0]

        def encoded(value: str) -> str:
            return value.encode(target, "replace").decode("latin-1")
    else:
        text = body.decode(encoding.codec)
        lines = [line for line in _LINE_END.split(text) if line]

        def real(line: str) -> str:
            return line

        def encoded(value: str) -> str:
            return value

    eol = next((line[len(line.rstrip("\r\n")):] for line in lines if line.endswith(("\n", "\r"))), "\n")
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += eol
    header_at = next((i for i, line in enumerate(lines) if real(line).strip() and not real(line).strip().startswith("#")),
                     None)
    if header_at is None:
        delimiter = ","
        lines.append(encoded(",".join(("email", *COLUMNS))) + eol)
        email_col, where = 0, {name: i + 1 for i, name in enumerate(COLUMNS)}
    else:
        header_line = real(lines[header_at])
        delimiter = guess_delimiter(header_line)
        try:
            cells = next(csv.reader([header_line.rstrip("\r\n")], delimiter=delimiter), [])
        except csv.Error as exc:
            raise SubscriberError(f"{path}, line {header_at + 1}: cannot read the header row: {exc}") from None
        keys = [header_key(cell) for cell in cells]
        email = next((i for i, cell in enumerate(cells) if is_email_header(cell)), None)
        if email is None:
            # A bare list of addresses: the new ones go in the same column, the details after them.
            email_col = next((i for i, cell in enumerate(cells) if "@" in cell), 0)
            where = {name: email_col + 1 + i for i, name in enumerate(COLUMNS)}
        else:
            email_col, where = email, {}
            missing: list[str] = []
            for name in COLUMNS:
                found = next((i for i, k in enumerate(keys) if k in _SYNONYMS[name]), None)
                if found is None:
                    found = len(cells) + len(missing)
                    missing.append(name)
                where[name] = found
            if missing:
                line = lines[header_at]
                content = line.rstrip("\r\n")
                lines[header_at] = content + encoded(delimiter + delimiter.join(missing)) + line[len(content):]
    for entry in entries:
        values = {"reason": entry.reason, "date": entry.date, "issue": entry.issue, "reply": entry.reply}
        row = [""] * (max(email_col, *where.values()) + 1)
        row[email_col] = entry.email
        for name, value in values.items():
            row[where[name]] = _cell(value)
        while row and not row[-1]:
            row.pop()
        lines.append(encoded(_csv_row(row, delimiter, eol)))
    out = "".join(lines)
    return encoding.bom + (out.encode("latin-1") if encoding.ascii_compatible else out.encode(encoding.codec))


def _writes_utf8(lines: list[str]) -> bool:
    """Whether new rows go in as UTF-8: yes unless the file is Windows-1252 through and through."""
    utf8 = other = False
    for line in lines:
        if line.isascii():
            continue
        if decode_line(line.encode("latin-1"))[1]:
            other = True
        else:
            utf8 = True
    return utf8 or not other


def _cell(value: str) -> str:
    value = " ".join(value.split())  # one line per row, whatever the server sent
    return "'" + value if value.startswith(_FORMULA) else value


def _csv_row(row: list[str], delimiter: str, eol: str) -> str:
    out = io.StringIO()
    # A first cell starting with "#" is quoted, or the row would read as a comment.
    if row and row[0].lstrip().startswith("#"):
        csv.writer(out, delimiter=delimiter, lineterminator=eol, quoting=csv.QUOTE_ALL).writerow(row)
    else:
        csv.writer(out, delimiter=delimiter, lineterminator=eol).writerow(row)
    return out.getvalue()
