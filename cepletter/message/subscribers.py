"""The subscriber list and the suppression list, read as spreadsheets write them.

One reader for both lists. A list is CSV with a header row naming an email
column, in any of the spellings and languages spreadsheets and mailing tools
use (``email``, ``E-Mail-Adresse``, ``Adresse e-mail``, ``E-mailadres``,
``Correo electrónico``, ``Indirizzo email`` ...), or, for the suppression list,
a bare column of addresses. It may be:

- UTF-8 with or without a byte-order mark, UTF-16 or UTF-32 with one, or
  Windows-1252. Encodings are told apart line by line: a UTF-8 file with one
  stray Windows-1252 byte keeps its UTF-8 everywhere else, and only that byte
  is read as Windows-1252 (the line is named in ``ListCounts.recoded``);
- separated by commas, semicolons or tabs, with quoted fields that hold the
  separator or a line break;
- with addresses written ``addr``, ``Name <addr>`` or ``mailto:addr``, in any
  case, with any spaces around them.

In the suppression list a line starting with ``#`` is a comment. Rows are
streamed: only the keys of addresses already seen are kept, so memory stays
flat.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import unquote

from cepletter.errors import SubscriberError
from cepletter.message.recipient import Recipient


def header_key(header: str) -> str:
    """A header as compared: case, accents, spaces and punctuation ignored ("E-Mail-Adresse" → "emailadresse")."""
    decomposed = unicodedata.normalize("NFKD", header.casefold())
    return "".join(c for c in decomposed if c.isascii() and c.isalnum())


# Normalised header names, in English, German, French, Dutch, Spanish and Italian.
_EMAIL_HEADERS = frozenset({
    "email", "emailaddress", "emailadress", "mail", "mailaddress", "email1value",  # Google Contacts: "E-mail 1 - Value"
    "emailadresse", "mailadresse",  # de
    "courriel", "adresseemail", "adressemail", "adressecourriel", "adressedecourriel", "mel",  # fr
    "adresseelectronique", "courrierelectronique", "adressedecourrierelectronique",
    "emailadres", "mailadres",  # nl
    "correo", "correoe", "correoelectronico", "direcciondecorreo", "direcciondecorreoelectronico",  # es
    "direccionemail", "direcciondeemail",
    "indirizzoemail", "indirizzomail", "postaelettronica", "indirizzodipostaelettronica",  # it
})


def is_email_header(header: str) -> bool:
    """Whether a header row's cell names the address column ("Email", "E-Mail-Adresse" ...)."""
    return header_key(header) in _EMAIL_HEADERS


# A name column that always holds the whole name.
_FULL_NAME = frozenset({
    "fullname", "displayname", "completename",
    "vollername", "vollstandigername", "anzeigename",
    "nomcomplet", "nometprenom", "prenometnom",
    "naam", "volledigenaam", "weergavenaam",
    "nombrecompleto", "nombreyapellidos",
    "nomecompleto", "nominativo", "nomeecognome",
})
# "Name" is the whole name, except beside a first-name column, where it is the family name
# (German "Vorname; Name").
_NAME = "name"
_FIRST = frozenset({"firstname", "givenname", "first", "forename", "vorname", "prenom", "voornaam", "nombre", "nome"})
_MIDDLE = frozenset({"middlename", "tussenvoegsel", "tussenvoegsels"})  # Dutch "de" in "Pieter de Vries"
_LAST = frozenset({
    "lastname", "surname", "familyname", "last",
    "nachname", "familienname", "zuname",
    "nom", "nomdefamille",  # the French "Nom" is the family name
    "achternaam", "familienaam",
    "apellido", "apellidos",
    "cognome",
})


@dataclass(frozen=True)
class Invalid:
    """A row that is never sent to, and why."""

    line: int
    value: str
    reason: str


# ---------------------------------------------------------------- text


def _cp1252_bytes(exc: UnicodeError) -> tuple[str, int]:
    """Decoding error handler: a byte that is not UTF-8 is read as Windows-1252 (its five
    undefined bytes as U+FFFD)."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return exc.object[exc.start : exc.end].decode("cp1252", "replace"), exc.end


codecs.register_error("cepletter-cp1252", _cp1252_bytes)

_BAD = "\udc00"  # never in decoded UTF-16 or UTF-32 text: marks what could not be decoded


def _mark_bad(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return _BAD, exc.end


codecs.register_error("cepletter-mark", _mark_bad)

# Longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)


@dataclass(frozen=True)
class Encoding:
    """How a list file is written: ``codec`` "utf-8" (UTF-8, Windows-1252 or a mix of the two,
    told apart per line), "utf-16-le" and so on, after a byte-order mark of ``bom`` bytes."""

    codec: str
    bom: bytes = b""
    label: str = "UTF-8"

    @property
    def ascii_compatible(self) -> bool:
        return self.codec == "utf-8"


def sniff_encoding(head: bytes) -> Encoding:
    """The encoding of a file that starts with ``head`` (its first few kilobytes)."""
    for bom, codec, label in _BOMS:
        if head.startswith(bom):
            return Encoding(codec, bom, label)
    if b"\x00" in head:
        # UTF-16 saved without a mark: "e\0m\0a\0..." or "\0e\0m\0a...".
        if len(head) >= 2 and head[0] == 0 and head[1] != 0:
            return Encoding("utf-16-be", b"", "UTF-16")
        if len(head) >= 2 and head[1] == 0 and head[0] != 0:
            return Encoding("utf-16-le", b"", "UTF-16")
    return Encoding("utf-8")


def detect_encoding(path: Path) -> str:
    """A name for how ``path`` is written: "utf-8-sig", "utf-16-le" ..., "utf-8" for UTF-8 text
    without a mark, "cp1252" when no line of it is UTF-8 beyond ASCII but some line is not UTF-8."""
    with path.open("rb") as fh:
        encoding = sniff_encoding(fh.read(4096))
        if not encoding.ascii_compatible:
            return encoding.codec
        if encoding.bom:
            return "utf-8-sig"
        fh.seek(0)
        utf8 = other = False
        for raw in fh:
            if raw.isascii():
                continue
            try:
                raw.decode("utf-8")
                utf8 = True
            except UnicodeDecodeError:
                other = True
        return "cp1252" if other and not utf8 else "utf-8"


# Where a UTF-8 sequence beyond ASCII could start: a lead byte and a continuation byte. A
# line that is not UTF-8 and has none is read as Windows-1252 in one go; one that has some
# keeps those that are whole UTF-8.
_UTF8_START = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")


def decode_line(raw: bytes) -> tuple[str, bool]:
    """One line of an ASCII-compatible list: (text, whether some byte was read as Windows-1252)."""
    if raw.isascii():
        return raw.decode("ascii"), False
    if _UTF8_START.search(raw) is None:
        return raw.decode("cp1252", "replace"), True
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", "cepletter-cp1252"), True


_LONE_CR = re.compile(rb"(?<=\r)(?!\n)")


def _inside_quotes(line: str, inside: bool, delimiter: str) -> bool:
    """Whether a quoted field is still open after ``line`` (csv's own rules for the default dialect)."""
    field_start = not inside
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if inside:
            if c == '"':
                if i + 1 < n and line[i + 1] == '"':
                    i += 2
                    continue
                inside = False
        elif c == '"' and field_start:
            inside = True
        field_start = not inside and c == delimiter
        i += 1
    return inside


def guess_delimiter(line: str) -> str:
    """Comma, semicolon or tab: whichever the header row has most of, outside quotes."""
    bare = re.sub(r'"[^"]*"', "", line)
    counts = {d: bare.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


class _Lines:
    """The text lines of one list file, for ``csv.reader``, with line numbers.

    ``record_start`` is the physical line where the record csv is reading began.
    Blank lines, and comment lines when ``comments``, are skipped here (outside
    quoted fields only) and still counted.
    """

    def __init__(self, path: Path, fh: IO[bytes], encoding: Encoding, comments: bool) -> None:
        self.path = path
        self.encoding = encoding
        self.comments = comments
        self.number = 0
        self.record_start = 0
        self.recoded: list[int] = []  # lines with bytes read as Windows-1252
        self.utf8 = False  # some line is UTF-8 beyond ASCII
        self.delimiter = ","
        self._inside = False
        self._lines = self._content(self._ascii(fh) if encoding.ascii_compatible else self._wide(fh))
        self._first: str | None = None

    def _ascii(self, fh: IO[bytes]) -> Iterator[str]:
        """UTF-8, Windows-1252 or both, decided line by line."""
        for raw in fh:
            if b"\r" in raw[:-2]:
                # Lone CR line ends (old Mac exports): one line per part.
                for part in _LONE_CR.split(raw):
                    if part:
                        yield self._decode(part)
                continue
            self.number += 1
            yield raw.decode("ascii") if raw.isascii() else self._decode(raw, counted=True)

    def _decode(self, raw: bytes, counted: bool = False) -> str:
        if not counted:
            self.number += 1
        text, recoded = decode_line(raw)
        if recoded:
            if len(self.recoded) < 1000:
                self.recoded.append(self.number)
        elif not raw.isascii():
            self.utf8 = True
        return text

    def _wide(self, fh: IO[bytes]) -> Iterator[str]:
        """UTF-16 or UTF-32: one undecodable unit refuses the file, naming its line."""
        import io

        text_fh = io.TextIOWrapper(fh, encoding=self.encoding.codec, errors="cepletter-mark", newline="")  # type: ignore[arg-type]
        for line in text_fh:
            self.number += 1
            if _BAD in line:
                raise SubscriberError(
                    f"{self.path}, line {self.number}: not valid {self.encoding.label} text",
                    f"The file starts as {self.encoding.label} but this line is not; "
                    "save it again from your spreadsheet (CSV UTF-8 is best).",
                )
            yield line

    def _content(self, source: Iterator[str]) -> Iterator[str]:
        comments = self.comments
        for line in source:
            if not self._inside:
                stripped = line.strip()
                if not stripped or (comments and stripped[0] == "#"):
                    continue
                self.record_start = self.number
            if self._inside or '"' in line:
                self._inside = _inside_quotes(line, self._inside, self.delimiter)
            yield line

    def first_record(self) -> str | None:
        """The first line of the header row (kept for the reader); sets ``delimiter`` from it."""
        line = next(self._lines, None)
        if line is not None:
            self._first = line
            self.delimiter = guess_delimiter(line)
            # Known only now: whether this line leaves a quoted field open.
            self._inside = '"' in line and _inside_quotes(line, False, self.delimiter)
        return line

    def __iter__(self) -> Iterator[str]:
        first, self._first = self._first, None
        return self._lines if first is None else itertools.chain((first,), self._lines)


# ---------------------------------------------------------------- addresses

# Spaces that a copy from a web page or a word processor leaves in a cell.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u200e\u200f\u00ad"))
_ANGLE = re.compile(r"(.*?)<([^<>]*)>\s*", re.DOTALL)


def parse_address(cell: str) -> tuple[str, str]:
    """(address, display name) of a cell holding ``addr``, ``Name <addr>`` or ``mailto:addr``.

    Case is kept (the domain is lower-cased by ``check_address``); spaces around
    the parts and invisible characters are dropped. The address is not checked.
    """
    value = cell.strip()
    if not value.isascii():
        value = value.translate(_INVISIBLE).strip()
    name = ""
    angle = _ANGLE.fullmatch(value) if "<" in value else None
    if angle:
        name = angle.group(1).strip()
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = name[1:-1].replace('\\"', '"').strip()
        value = angle.group(2).strip()
    if ":" in value and value[:7].casefold() == "mailto:":
        value = value[7:].split("?", 1)[0].strip()
        if "%" in value:
            value = unquote(value)
    return value, name


# The plain addresses almost every list consists of. An address of this shape
# is valid for email-validator too (a property test checks that), so it skips
# the full check, which is slow enough to matter when a list is read at sending speed.
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
    # A local part that is not ASCII (zoë@..., 用户@...) needs a server that offers SMTPUTF8
    # (RFC 6531): whether the server does is asked before sending (deliver.send.prepare).
    return result.ascii_email or result.normalized, ""


class SubscriberFile:
    """One CSV list. ``rows()`` yields a Recipient or an Invalid per data row.

    ``kind`` names the list in messages; ``comments`` lets lines starting with
    ``#`` be comments (the suppression list). Not ``required``: a missing file
    has no rows.
    """

    def __init__(self, path: Path, *, required: bool = True, kind: str = "subscriber list",
                 comments: bool = False) -> None:
        self.path = path
        self.required = required
        self.kind = kind
        self.comments = comments
        self.recoded: list[int] = []  # after reading: lines with bytes read as Windows-1252 in a UTF-8 file

    def exists(self) -> bool:
        return self.path.is_file()

    def _missing(self) -> SubscriberError:
        if self.kind == "subscriber list":
            hint = "Create it with a header row and an `email` column, or set [delivery] subscribers."
        else:
            hint = ("[delivery] suppressed in cepletter.toml names it. Create it (a first line `email` is enough), "
                    'correct the name, or write suppressed = "" to send with no suppression list.')
        return SubscriberError(f"{self.path}: {self.kind} not found", hint)

    def rows(self) -> Iterator[Recipient | Invalid]:
        path = self.path
        if path.is_dir():
            raise SubscriberError(f"{path}: the {self.kind} is a folder, not a file")
        try:
            fh = path.open("rb")
        except FileNotFoundError:
            if self.required:
                raise self._missing() from None
            return
        except OSError as exc:
            raise SubscriberError(f"{path}: cannot read the {self.kind}: {exc.strerror}") from None
        try:
            with fh:
                encoding = sniff_encoding(fh.read(4096))
                fh.seek(len(encoding.bom))
                lines = _Lines(path, fh, encoding, self.comments)
                yield from self._rows(lines)
                if lines.utf8:
                    self.recoded = lines.recoded
        except OSError as exc:
            raise SubscriberError(f"{path}: cannot read the {self.kind}: {exc.strerror}") from None
        except csv.Error as exc:
            raise SubscriberError(f"{path}: not a readable CSV file: {exc}", "Save it as CSV from your spreadsheet.") from None

    def _rows(self, lines: _Lines) -> Iterator[Recipient | Invalid]:
        first = lines.first_record()
        if first is None:
            return
        reader = csv.reader(lines, delimiter=lines.delimiter)
        row = next(reader, None)
        if row is None:
            return
        header = [cell.strip() for cell in row]
        columns = _Columns([header_key(h) for h in header])
        if columns.email is None:
            at = next((i for i, cell in enumerate(header) if "@" in cell), None)
            if at is None:
                raise SubscriberError(
                    f"{self.path}, line {lines.record_start}: no email column in the header row "
                    f"({', '.join(header) or 'empty'})",
                    "Name the column with the addresses `email`.",
                )
            # A bare list of addresses with no header row (handy for suppression lists).
            header, columns = [], _Columns([], email=at)
            yield self._recipient(header, columns, row, lines.record_start)
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            yield self._recipient(header, columns, row, lines.record_start)

    @staticmethod
    def _recipient(header: list[str], columns: _Columns, row: list[str], line: int) -> Recipient | Invalid:
        assert columns.email is not None
        cell = row[columns.email] if columns.email < len(row) else ""
        raw, display = parse_address(cell)
        address, reason = check_address(raw)
        if address is None:
            return Invalid(line, raw or cell.strip(), reason)
        fields = {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header) if h}
        name = columns.name(row) or display
        fields.setdefault("name", name)
        return Recipient(email=address, name=name, fields=fields, line=line)


class _Columns:
    """Which columns of a header hold the address and the parts of the name."""

    def __init__(self, keys: list[str], email: int | None = None) -> None:
        def find(names: frozenset[str]) -> list[int]:
            return [i for i, k in enumerate(keys) if k in names]

        self.email = email if email is not None else next((i for i, k in enumerate(keys) if k in _EMAIL_HEADERS), None)
        self.full = find(_FULL_NAME)
        self.first = find(_FIRST)
        self.middle = find(_MIDDLE)
        self.last = find(_LAST)
        plain = find(frozenset({_NAME}))
        if self.first and not self.last:
            self.last = plain
        else:
            self.full += plain

    def name(self, row: list[str]) -> str:
        full = _cell(row, self.full)
        if full or not (self.first or self.last):
            return full
        return " ".join(part for part in (_cell(row, self.first), _cell(row, self.middle), _cell(row, self.last)) if part)


def _cell(row: list[str], columns: list[int]) -> str:
    """The first non-empty cell of ``columns`` in ``row``."""
    for i in columns:
        if i < len(row):
            value = row[i].strip()
            if value:
                return value
    return ""


def email_key(address: str) -> str:
    """The key that decides whether two addresses are the same subscriber."""
    return address.strip().lower()


def read_suppressed(path: Path | None) -> set[str]:
    """Keys of every address in the suppression list; None (``[delivery] suppressed = ""``) means none.

    A missing or unreadable file is a SubscriberError: a list that is not read
    would let unsubscribed people be mailed.
    """
    keys: set[str] = set()
    if path is None:
        return keys
    for row in SubscriberFile(path, kind="suppression list", comments=True).rows():
        if isinstance(row, Recipient):
            keys.add(email_key(row.email))
        elif row.value:
            # An address that fails the syntax check is still honoured as written.
            keys.add("".join(row.value.split()).lower())
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
    not_ascii: int = 0  # of to_send: addresses that need SMTPUTF8
    # Lines of a UTF-8 list with bytes that are not UTF-8, read as Windows-1252 (set at the end).
    recoded: list[int] = field(default_factory=list)


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
    source = SubscriberFile(path)
    for row in source.rows():
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
        if not row.email.isascii():
            counts.not_ascii += 1
        yield row
    counts.recoded = source.recoded
