"""The subscriber list and the suppression list, read as spreadsheets write them.

A list is CSV in UTF-8 (with or without a byte-order mark) or Windows-1252,
separated by commas or semicolons, with a header row naming an email column
(``email``, ``Email``, ``E-mail``, ``Email address`` ...). Rows are streamed:
only the keys of addresses already seen are kept, so memory stays flat.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cepletter.errors import SubscriberError
from cepletter.message.recipient import Recipient

_EMAIL_HEADERS = {"email", "emailaddress", "mail", "mailaddress", "emailadres", "courriel"}
_NAME_HEADERS = {"name", "fullname", "displayname"}
_FIRST = {"firstname", "givenname", "first"}
_LAST = {"lastname", "surname", "familyname", "last"}


def _norm(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


@dataclass(frozen=True)
class Invalid:
    """A row that is never sent to, and why."""

    line: int
    value: str
    reason: str


def detect_encoding(path: Path) -> str:
    """"utf-8-sig" when the whole file is UTF-8, else "cp1252" (checked in chunks)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 16):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8-sig"


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


# The plain addresses almost every list consists of. An address of this shape
# is valid for email-validator too (a property test checks that), so it skips
# the full check, which costs ~50 µs: much of the budget per message at speed.
_PLAIN = re.compile(
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def _plain(value: str) -> str | None:
    """The normalised address when ``value`` is a plain ASCII address, else None (use the full check)."""
    if len(value) > 254 or not _PLAIN.fullmatch(value):
        return None
    local, _, domain = value.partition("@")
    domain = domain.lower()
    # "xn--" and any other label with "--" in third and fourth place are reserved (RFC 5891):
    # email-validator refuses those that are not valid IDNA, so they take the full check.
    if len(local) > 64 or any(label[2:4] == "--" for label in domain.split(".")):
        return None
    if any(domain == name or domain.endswith("." + name) for name in SPECIAL_USE_DOMAINS):
        return None
    return f"{local}@{domain}"


# email-validator's SPECIAL_USE_DOMAIN_NAMES (a test keeps the two the same): addresses in
# them take the full check, which refuses them. Written out so that a plain list never
# needs to import email-validator, which takes longer than checking thousands of rows.
SPECIAL_USE_DOMAINS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


def check_address(value: str) -> tuple[str | None, str]:
    """(normalised address, "") or (None, reason): syntax only, no DNS."""
    value = value.strip()
    if not value:
        return None, "no email address"
    plain = _plain(value)
    if plain is not None:
        return plain, ""
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        return None, str(exc)
    if result.ascii_email is None:
        return None, "address needs an internationalised (SMTPUTF8) mail server, which is not supported"
    return result.ascii_email, ""


class SubscriberFile:
    """One CSV list. ``rows()`` yields a Recipient or an Invalid per data row."""

    def __init__(self, path: Path, *, required: bool = True) -> None:
        self.path = path
        self.required = required

    def exists(self) -> bool:
        return self.path.is_file()

    def rows(self) -> Iterator[Recipient | Invalid]:
        path = self.path
        if not path.is_file():
            if self.required:
                raise SubscriberError(
                    f"{path}: subscriber list not found",
                    "Create it with a header row and an `email` column, or set [delivery] subscribers.",
                )
            return
        encoding = detect_encoding(path)
        try:
            # Windows-1252 leaves five bytes undefined: show them as U+FFFD, do not stop.
            with path.open("r", encoding=encoding, errors="replace", newline="") as fh:
                first = fh.readline()
                fh.seek(0)
                reader = csv.reader(fh, delimiter=_delimiter(first))
                yield from self._rows(reader)
        except OSError as exc:
            raise SubscriberError(f"{path}: cannot read: {exc.strerror}") from None
        except csv.Error as exc:
            raise SubscriberError(f"{path}: not a readable CSV file: {exc}", "Save it as CSV from your spreadsheet.") from None

    def _rows(self, reader: Iterator[list[str]]) -> Iterator[Recipient | Invalid]:
        header: list[str] | None = None
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            header = [cell.strip() for cell in row]
            break
        if header is None:
            return
        keys = [_norm(h) for h in header]
        email_col = next((i for i, k in enumerate(keys) if k in _EMAIL_HEADERS), None)
        if email_col is None:
            if any("@" in cell for cell in header):
                # A bare list of addresses with no header row (handy for suppression lists).
                email_col, header = 0, ["email"]
                yield self._recipient(header, keys, email_col, row, self._line(reader))
            else:
                raise SubscriberError(
                    f"{self.path}, line {self._line(reader)}: no email column in the header row "
                    f"({', '.join(header) or 'empty'})",
                    "Name the column with the addresses `email`.",
                )
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            yield self._recipient(header, keys, email_col, row, self._line(reader))

    @staticmethod
    def _line(reader: object) -> int:
        return int(getattr(reader, "line_num", 0))

    @staticmethod
    def _recipient(header: list[str], keys: list[str], email_col: int, row: list[str], line: int) -> Recipient | Invalid:
        raw = row[email_col].strip() if email_col < len(row) else ""
        address, reason = check_address(raw)
        if address is None:
            return Invalid(line, raw, reason)
        fields = {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header) if h}
        name = ""
        for i, key in enumerate(keys):
            if key in _NAME_HEADERS and i < len(row):
                name = row[i].strip()
                break
        else:
            first = next((row[i].strip() for i, k in enumerate(keys) if k in _FIRST and i < len(row)), "")
            last = next((row[i].strip() for i, k in enumerate(keys) if k in _LAST and i < len(row)), "")
            name = f"{first} {last}".strip()
        fields.setdefault("name", name)
        return Recipient(email=address, name=name, fields=fields, line=line)


def email_key(address: str) -> str:
    """The key that decides whether two addresses are the same subscriber."""
    return address.strip().lower()


def read_suppressed(path: Path) -> set[str]:
    """Keys of every address in the suppression list (none when the file is absent)."""
    keys: set[str] = set()
    for row in SubscriberFile(path, required=False).rows():
        if isinstance(row, Recipient):
            keys.add(email_key(row.email))
        elif row.value:
            # An address that fails the syntax check is still honoured as written.
            keys.add(email_key(row.value))
    return keys


@dataclass
class ListCounts:
    """What reading the list found (filled in while streaming)."""

    rows: int = 0
    invalid: int = 0
    duplicates: int = 0
    suppressed: int = 0
    already_sent: int = 0
    to_send: int = 0


def recipients(
    path: Path,
    suppressed: set[str],
    already_sent: set[str],
    counts: ListCounts,
    invalid: list[Invalid] | None = None,
) -> Iterator[Recipient]:
    """Stream the recipients still to mail: valid, first of their duplicates, not suppressed, not sent.

    Duplicates are recognised by a 64-bit hash of the key, so memory holds one
    small integer per subscriber rather than the rows.
    """
    seen: set[int] = set()
    for row in SubscriberFile(path).rows():
        counts.rows += 1
        if isinstance(row, Invalid):
            counts.invalid += 1
            if invalid is not None:
                invalid.append(row)
            continue
        key = email_key(row.email)
        h = hash(key)
        if h in seen:
            counts.duplicates += 1
            continue
        seen.add(h)
        if key in suppressed:
            counts.suppressed += 1
            continue
        if key in already_sent:
            counts.already_sent += 1
            continue
        counts.to_send += 1
        yield row
