"""Returned mail back into the list: bounces, unsubscribe requests, auto-replies.

``process`` reads the new messages of a mailbox (`cepletter.deliver.mailbox`),
works out what each one is and whom it is about, and changes the list:

- **hard** bounce (a 5.x.x status that is about the address: 5.1.x, 5.2.1,
  5.4.x, 5.0.0): the address goes into ``suppressed.csv``;
- **soft** bounce (4.x.x, a delay, or a full mailbox whatever its code):
  counted per address and issue; soft bounces in ``[bounces] soft_limit``
  consecutive issues sent to the address suppress it;
- **refused** (5.7.x policy or spam, 5.3.x/5.6.x content, 5.2.3 too big):
  about the message, not the address, so nothing changes; reported;
- **unsubscribe** request (mail to ``unsubscribe_mailto``, or a subject or
  first line saying "unsubscribe" in one of the list's languages): suppressed;
- **auto-reply** (RFC 3834 ``Auto-Submitted``, ``X-Autoreply``, an out-of-office
  subject, a delivery or read receipt): ignored;
- anything else is **not understood**: listed, and left unread in the mailbox.

Detection uses flufl.bounce (GNU Mailman's detectors, which know the
non-standard formats of qmail, old Exchange and others) on messages that look
like bounces; the fields of RFC 3464 ``message/delivery-status`` parts
(Status, Action, Original- and Final-Recipient, Diagnostic-Code) are read with
the standard ``email`` package.

Attribution: a bounce is tied to a subscriber by the VERP token in the address
it was returned to (``[delivery] return_path``), by the ``Message-ID`` of the
returned message in an issue's journal, or by its Original-/Final-Recipient
when that address is on the list; and to the issue by that Message-ID, else
the latest issue the journal shows was sent to the subscriber. An address not
on the list, or never sent an issue, is reported and nothing changes. An
unsubscribe request is taken for its sender, or for the subscriber whose
``{token}`` it carries; a request that names somebody else's address without
that address's token is reported, not taken.

What was read and the soft-bounce counts are kept in ``bounces.json`` in the
workspace (keep it in git beside the list). Effects come in this order:
suppressed.csv (atomic), then bounces.json (atomic), then the mailbox flags.
A run cut short anywhere is safe to repeat: suppressing an address twice or
counting one issue's soft bounce twice changes nothing.
"""

from __future__ import annotations

import email
import email.message
import email.utils
import fcntl
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date
from email.header import decode_header
from email.parser import BytesHeaderParser, HeaderParser
from pathlib import Path
from typing import Any

from cepletter.config import Settings
from cepletter.deliver import suppression
from cepletter.deliver.journal import JOURNAL_NAME, SENT, read_results
from cepletter.deliver.mailbox import Incoming, Source
from cepletter.errors import ConfigError, MailboxError
from cepletter.fsutil import atomic_write_text
from cepletter.issue.folder import list_issue_ids
from cepletter.message.personal import envelope_token, recipient_token
from cepletter.message.recipient import Recipient
from cepletter.message.subscribers import (
    SubscriberFile,
    check_address,
    email_key,
    parse_address,
    read_suppressed,
)

HARD, SOFT, REFUSED = "hard", "soft", "refused"
UNSUBSCRIBE, AUTO_REPLY, NOT_UNDERSTOOD = "unsubscribe", "auto-reply", "not understood"
KINDS = (HARD, SOFT, REFUSED, UNSUBSCRIBE, AUTO_REPLY, NOT_UNDERSTOOD)

STATE_NAME = "bounces.json"
UNSUBSCRIBED = "unsubscribed"
MAX_PARTS = 200  # MIME parts (headers naming a content type) a message may have before it is not parsed
MAX_LINE = 1000  # characters of a header or line kept for the report


# ---------------------------------------------------------------- reading one message


@dataclass(frozen=True)
class Failure:
    """One recipient a bounce reports."""

    address: str  # Original-Recipient, else Final-Recipient, else what the detector found (lower case)
    kind: str  # HARD, SOFT or REFUSED
    status: str  # "5.1.1"; "" when the report gives none
    diagnostic: str
    final: str = ""


@dataclass
class Reading:
    """What one message says, before it is tied to the list."""

    kind: str
    subject: str = ""
    sender: str = ""  # the From address, checked, lower case ("" when it has none)
    failures: list[Failure] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)  # of the message it returns or answers
    tokens: list[str] = field(default_factory=list)  # VERP or unsubscribe tokens it carries
    named: list[str] = field(default_factory=list)  # addresses an unsubscribe request names
    note: str = ""


@dataclass(frozen=True)
class Rules:
    """What the workspace tells the reader: where unsubscribe mail goes, the VERP pattern."""

    unsubscribe_mailto: str = ""
    return_path: str = ""

    @classmethod
    def of(cls, settings: Settings) -> Rules:
        mailto = settings.newsletter.unsubscribe_mailto or ""
        return cls(parse_address(mailto)[0].lower() if mailto else "", settings.delivery.return_path or "")

    def verp(self) -> re.Pattern[str] | None:
        local, _, domain = self.return_path.rpartition("@")
        if "{token}" not in local:
            return None
        before, _, after = local.partition("{token}")
        return re.compile(rf"{re.escape(before)}([A-Za-z0-9_=-]{{1,64}}){re.escape(after)}@{re.escape(domain)}",
                          re.IGNORECASE)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def _clean(text: str, limit: int = MAX_LINE) -> str:
    return " ".join(_CONTROL.sub(" ", text).split())[:limit]


def _header(msg: email.message.Message, name: str) -> str:
    """A header's text, RFC 2047 decoded; unknown charsets and stray bytes never raise."""
    raw = msg.get(name)
    if raw is None:
        return ""
    value = str(raw) if not isinstance(raw, str) else raw
    # compat32 keeps bytes that are not ASCII as surrogates: read them as UTF-8, else Latin-1.
    if any("\udc80" <= c <= "\udcff" for c in value):
        data = value.encode("ascii", "surrogateescape")
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            value = data.decode("latin-1")
    try:
        parts = decode_header(value)
    except Exception:  # a malformed encoded word: keep the text as it is
        return _clean(value)
    out: list[str] = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        try:
            out.append(chunk.decode(charset or "ascii"))
        except (LookupError, UnicodeDecodeError):
            out.append(chunk.decode("utf-8", "replace"))
    return _clean("".join(out))


def _payload_text(part: email.message.Message) -> str:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # broken base64 or quoted-printable
        data = None
    if not isinstance(data, bytes):
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def _walk(msg: email.message.Message) -> Iterator[email.message.Message]:
    """Every part, without recursion (the standard walk recurses once per level)."""
    stack = [msg]
    while stack:
        part = stack.pop()
        yield part
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend(reversed([p for p in payload if isinstance(p, email.message.Message)]))


def _addresses(msg: email.message.Message, *names: str) -> list[str]:
    out: list[str] = []
    for name in names:
        for value in msg.get_all(name) or []:
            text = _header_value(value)
            for _, addr in email.utils.getaddresses([text]):
                if "@" in addr:
                    out.append(addr.strip().lower())
    return out


def _header_value(value: Any) -> str:
    text = str(value)
    return text.encode("ascii", "surrogateescape").decode("utf-8", "replace") if not text.isascii() else text


_MSGID = re.compile(r"<([^<>\s]{1,500})>")


def _message_ids(*values: str) -> list[str]:
    return [f"<{m}>" for value in values for m in _MSGID.findall(value)]


_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.]*\d)")
_FULL = re.compile(
    r"mailbox\s+(?:is\s+)?full|over\s*quota|quota\s+exceeded|exceeded?\s+(?:the\s+|his\s+|her\s+|its\s+)?"
    r"(?:storage|quota)|insufficient\s+(?:system\s+)?storage|mailbox\s+size\s+limit|storage\s+(?:space\s+)?full"
    r"|postfach\s+(?:ist\s+)?voll|bo[iî]te\s+(?:aux\s+lettres\s+)?(?:est\s+)?pleine|buz[oó]n\s+(?:est[aá]\s+)?lleno"
    r"|casella\s+(?:postale\s+)?(?:è\s+)?piena|mailbox\s+(?:is\s+)?vol\b",
    re.IGNORECASE,
)


def _status_in(text: str) -> str:
    match = _STATUS.search(text)
    return ".".join(match.groups()) if match else ""


def judge(status: str, diagnostic: str, *, delayed: bool = False, permanent: bool | None = None) -> tuple[str, str]:
    """(kind, status) of one failed recipient: HARD, SOFT or REFUSED, or NOT_UNDERSTOOD.

    A generic status (x.0.0) gives way to a precise one in the diagnostic
    ("Status: 5.0.0" with "550 5.7.1 spam" is a policy refusal). ``permanent``
    is the detector's word where the report has no status at all.
    """
    inner = _status_in(diagnostic)
    if (not status or status.endswith(".0.0")) and inner and (not status or inner[0] == status[0]):
        status = inner
    if delayed or _FULL.search(diagnostic) or status[1:] == ".2.2":
        return SOFT, status
    if not status:
        if permanent is None:
            return (HARD, status) if suppression.address_gone("550 " + diagnostic) else (NOT_UNDERSTOOD, status)
        return (HARD if permanent else SOFT), status
    klass, subject, detail = (int(p) for p in status.split("."))
    if klass == 4:
        return SOFT, status
    if klass != 5:
        return NOT_UNDERSTOOD, status
    if subject in (3, 5, 6, 7) or (subject, detail) in ((2, 3), (2, 4)):
        return REFUSED, status
    return HARD, status


_BOUNCE_FROM = re.compile(r"^(?:mailer[-_]?daemon|postmaster|mail[-_]?daemon|mailer|mdaemon|mail\s*delivery)", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|not\s+(?:be\s+)?delivered|delivery\s+(?:status\s+)?notification|delivery\s+fail"
    r"|failure\s+notice|returned\s+mail|returned\s+to\s+sender|mail\s+delivery\s+(?:failed|system|subsystem)"
    r"|non[- ]?delivery|delivery\s+has\s+failed|delayed\s+mail|delivery\s+delayed|warning:\s+delay"
    r"|nicht\s+zustellbar|unzustellbar|non\s+remis|no\s+se\s+(?:pudo|puede)\s+entregar|impossibile\s+recapitare"
    r"|onbestelbaar|mailbox\s+(?:is\s+)?full|over\s+quota",
    re.IGNORECASE,
)
_AUTO_SUBJECT = re.compile(
    r"^(?:auto(?:matic|matische|matique)?[\s_:-]*(?:reply|response|answer|antwort|antwoord)|autoreply|auto:"
    r"|out\s+of\s+(?:the\s+)?office|ooo\b|abwesen|automatische\s+antwort|r[ée]ponse\s+automatique|absence|absent\b"
    r"|afwezig|automatisch\s+antwoord|fuera\s+de\s+la\s+oficina|respuesta\s+autom[aá]tica|ausente"
    r"|risposta\s+automatica|fuori\s+(?:sede|ufficio)|assente|vacation|on\s+(?:holiday|leave)|away\s+from)",
    re.IGNORECASE,
)
_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|aw|antw|sv|vs|ref|rif|r|tr|wg|fw|fwd|enc)\s*(?:\[\d+\])?\s*:\s*)+", re.I)

# Normalised (case and accents dropped) words that say "unsubscribe", and the words people put
# around them, in the list's languages: en, fr, de, nl, es, it.
_UNSUBSCRIBE_WORDS = frozenset({"unsubscribe", "desinscrire", "desinscription", "desabonner", "desabonnement",
                                "abmelden", "abbestellen", "afmelden", "uitschrijven", "baja", "cancellami",
                                "cancellazione", "disiscrivimi", "unsubscription"})
_FILLER = frozenset({"please", "pls", "me", "mich", "bitte", "se", "svp", "sil", "vous", "plait", "de", "la", "newsletter",
                     "graag", "aub", "darse", "dar", "darme", "por", "favor", "per", "piacere", "mi", "from", "this",
                     "list", "the", "van", "nieuwsbrief", "lettre", "d", "information", "informations", "s", "il"})
_TOKEN_WORD = re.compile(r"[a-z0-9_=-]{8,64}")


def _norm_words(text: str) -> list[str]:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.findall(r"[a-z0-9_=+.@'-]+", plain.replace("'", " "))


def unsubscribe_line(text: str) -> tuple[bool, list[str], list[str]]:
    """Whether a subject or first line asks to unsubscribe, and the addresses and tokens it names.

    "Unsubscribe", "Re: unsubscribe", "Bitte abmelden", "darse de baja", "unsubscribe
    anna@example.org": yes. A sentence that merely contains the word is not a request.
    """
    words = [w.strip(".-'") for w in _norm_words(_REPLY_PREFIX.sub("", text))]
    words = [w for w in words if w]
    keyword = [w for w in words if w in _UNSUBSCRIBE_WORDS]
    if not keyword:
        return False, [], []
    rest = [w for w in words if w not in _UNSUBSCRIBE_WORDS and w not in _FILLER]
    addresses = [w for w in rest if "@" in w]
    tokens = [w for w in rest if "@" not in w and _TOKEN_WORD.fullmatch(w)]
    if len(rest) > 1 or (rest and not (addresses or tokens)):
        return False, [], []
    return True, addresses, tokens


def _first_line(msg: email.message.Message) -> str:
    for part in _walk(msg):
        if part.get_content_type() == "text/plain" and not part.get_filename():
            for line in _payload_text(part).splitlines():
                if line.strip():
                    return _clean(line)
            return ""
    for part in _walk(msg):
        if part.get_content_type() == "text/html":
            text = re.sub(r"<[^>]*>", "\n", _payload_text(part))
            for line in text.splitlines():
                if line.strip():
                    return _clean(line)
    return ""


def _too_many_parts(data: bytes) -> bool:
    return len(re.findall(rb"(?im)^content-type:", data)) > MAX_PARTS


def read_message(data: bytes, rules: Rules, *, truncated: bool = False) -> Reading:
    """What one returned message is (see the module's list); never raises on any input."""
    if _too_many_parts(data):
        head = BytesHeaderParser().parsebytes(data)
        return Reading(NOT_UNDERSTOOD, _header(head, "Subject"), _sender(head),
                       note=f"more than {MAX_PARTS} MIME parts: not read further")
    try:
        msg = email.message_from_bytes(data)
        return _read(msg, rules, truncated)
    except RecursionError:
        head = BytesHeaderParser().parsebytes(data)
        return Reading(NOT_UNDERSTOOD, _header(head, "Subject"), _sender(head), note="MIME nested too deeply")


def _sender(msg: email.message.Message) -> str:
    value = _header(msg, "From")
    address, _ = parse_address(email.utils.parseaddr(value)[1] or value)
    checked, _ = check_address(address) if address else (None, "")
    return (checked or "").lower()


def _recipient_addresses(msg: email.message.Message) -> list[str]:
    return _addresses(msg, "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To", "Cc")


def _read(msg: email.message.Message, rules: Rules, truncated: bool) -> Reading:
    subject = _header(msg, "Subject")
    reading = Reading(NOT_UNDERSTOOD, subject, _sender(msg))
    reading.message_ids = _message_ids(_header(msg, "In-Reply-To"), _header(msg, "References"))
    verp = rules.verp()
    to = _recipient_addresses(msg)
    if verp is not None:
        reading.tokens = [m.group(1).lower() for a in to if (m := verp.fullmatch(a))]
    reports = any(part.get_content_type() == "message/delivery-status" for part in _walk(msg))
    if reports and _read_bounce(msg, reading, verp):
        return reading
    if _auto_reply(msg, subject):
        reading.kind = AUTO_REPLY
        return reading
    bounce_like = _looks_like_bounce(msg, subject)
    if bounce_like and _read_bounce(msg, reading, verp):
        return reading
    asked, named, tokens = unsubscribe_line(subject)
    if not asked:
        asked, named, tokens = unsubscribe_line(_first_line(msg))
    to_mailto = False
    if rules.unsubscribe_mailto:
        local, _, domain = rules.unsubscribe_mailto.partition("@")
        for address in to:
            a_local, _, a_domain = address.partition("@")
            base, plus, tag = a_local.partition("+")
            if a_domain == domain and base == local:
                to_mailto = True
                if plus and _TOKEN_WORD.fullmatch(tag):
                    tokens.append(tag)
    if asked or to_mailto:
        reading.kind = UNSUBSCRIBE
        reading.named = [a for a in (check_address(n)[0] for n in named) if a]
        reading.tokens += tokens
        return reading
    if bounce_like:
        reading.note = "looks like a bounce, but names no address that failed"
    elif truncated:
        reading.note = "message cut at its first megabytes, and not a bounce in the part read"
    return reading


def _auto_reply(msg: email.message.Message, subject: str) -> bool:
    auto = _header(msg, "Auto-Submitted").lower()
    if auto and not auto.startswith("no"):
        return True
    if any(msg.get(h) is not None for h in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Autogenerated")):
        return True
    if _header(msg, "Precedence").lower() == "auto_reply":
        return True
    if msg.get_content_type() == "multipart/report" and (msg.get_param("report-type") or "") == "disposition-notification":
        return True  # a read receipt (RFC 8098)
    return bool(_AUTO_SUBJECT.match(_REPLY_PREFIX.sub("", subject)))


def _looks_like_bounce(msg: email.message.Message, subject: str) -> bool:
    if msg.get_content_type() == "multipart/report":
        return True
    return_path = _header(msg, "Return-Path")
    if return_path.strip() in ("<>", "") and msg.get("Return-Path") is not None:
        return True
    local = _sender_local(msg)
    return bool(_BOUNCE_FROM.match(local) or _BOUNCE_SUBJECT.search(subject))


def _sender_local(msg: email.message.Message) -> str:
    name, address = email.utils.parseaddr(_header(msg, "From"))
    return address.partition("@")[0] or name


def _field(block: email.message.Message, name: str) -> str:
    return _clean(_header(block, name))


def _address_field(value: str) -> str:
    """``rfc822; <a@example.org>`` → ``a@example.org``."""
    text = value.split(";", 1)[1] if ";" in value else value
    address, _ = parse_address(text.strip())
    return address.strip().lower()


def _status_blocks(part: email.message.Message) -> list[email.message.Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, email.message.Message)]
    # Sent as text (base64, or not parsed as header blocks): read the blocks ourselves.
    text = _payload_text(part)
    return [HeaderParser().parsestr(block.strip() + "\n") for block in re.split(r"\r?\n\s*\r?\n", text) if block.strip()]


def _returned_headers(msg: email.message.Message) -> list[email.message.Message]:
    out: list[email.message.Message] = []
    for part in _walk(msg):
        kind = part.get_content_type()
        if kind == "message/rfc822" or kind == "message/rfc822-headers":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], email.message.Message):
                out.append(payload[0])
        elif kind == "text/rfc822-headers":
            out.append(HeaderParser().parsestr(_payload_text(part)))
    return out


def _read_bounce(msg: email.message.Message, reading: Reading, verp: re.Pattern[str] | None) -> bool:
    """Fill ``reading`` when ``msg`` is a bounce or a delivery report; False when nothing in it says so."""
    failures: dict[str, Failure] = {}
    reports = False
    notified = False  # a report only of successful deliveries
    for part in _walk(msg):
        if part.get_content_type() != "message/delivery-status":
            continue
        reports = True
        for block in _status_blocks(part):
            if verp is not None:
                sender = _address_field(_field(block, "X-Postfix-Sender"))
                if sender and (m := verp.fullmatch(sender)):
                    reading.tokens.append(m.group(1).lower())
            final = _address_field(_field(block, "Final-Recipient"))
            original = _address_field(_field(block, "Original-Recipient")) or _address_field(
                _field(block, "X-Actual-Recipient"))
            if not (final or original):
                continue
            action = _field(block, "Action").lower()
            if action.startswith(("delivered", "relayed", "expanded")):
                notified = True
                continue
            status = _status_in(_field(block, "Status"))
            diagnostic = _field(block, "Diagnostic-Code")
            kind, status = judge(status, diagnostic, delayed=action.startswith("delayed"),
                                 permanent=True if action.startswith(("fail", "error")) else None)
            address = original or final
            if "@" in address:
                failures.setdefault(address, Failure(address, kind, status, diagnostic or action, final))
    text = _bounce_text(msg)
    for address, permanent in _detected(msg):
        if address in failures:
            continue
        near = _near(text, address)
        kind, status = judge(_status_in(near), near, permanent=permanent)
        failures[address] = Failure(address, kind, status, near)
    for headers in _returned_headers(msg):
        reading.message_ids += _message_ids(_header(headers, "Message-ID"))
        if verp is not None:
            for address in _addresses(headers, "Return-Path"):
                if m := verp.fullmatch(address):
                    reading.tokens.append(m.group(1).lower())
    # A bounce that quotes the message as text (qmail's "copy of the message" below its report).
    reading.message_ids += _message_ids(*_QUOTED_ID.findall(text))
    if verp is not None:
        reading.tokens += [m.group(1).lower() for a in _QUOTED_RETURN.findall(text) if (m := verp.fullmatch(a.lower()))]
    reading.tokens = list(dict.fromkeys(reading.tokens))
    reading.message_ids = list(dict.fromkeys(reading.message_ids))
    if failures:
        found = list(failures.values())
        reading.failures = found
        kinds = {f.kind for f in found}
        reading.kind = next(k for k in (HARD, SOFT, REFUSED, NOT_UNDERSTOOD) if k in kinds)
        if reading.kind == NOT_UNDERSTOOD:
            reading.note = "a bounce without a status code or a reason that can be read"
        return True
    if notified:
        reading.kind = AUTO_REPLY
        reading.note = "delivery notification"
        return True
    if not reports:
        return False
    reading.kind = NOT_UNDERSTOOD
    reading.note = "a delivery report with no recipient that can be read"
    return True


_QUOTED_ID = re.compile(r"(?im)^message-id:\s*(<[^<>\s]{1,500}>)")
_QUOTED_RETURN = re.compile(r"(?im)^return-path:\s*<([^<>\s]{1,300})>")


def _bounce_text(msg: email.message.Message) -> str:
    """The human-readable text of a bounce (first text parts, not the returned message)."""
    out: list[str] = []
    stack: list[email.message.Message] = [msg]
    while stack and len(out) < 5:
        part = stack.pop()
        kind = part.get_content_type()
        if kind.startswith("message/"):
            continue  # the returned message or its report: not the bounce's own words
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend(reversed([p for p in payload if isinstance(p, email.message.Message)]))
        elif kind in ("text/plain", "text/html"):
            out.append(_payload_text(part)[:200_000])
    return "\n".join(out)


def _near(text: str, address: str) -> str:
    """The words after ``address`` in a bounce's text: where qmail and friends give the reason."""
    at = text.lower().find(address)
    if at < 0:
        return ""
    return _clean(text[at + len(address): at + len(address) + 400])


def _detected(msg: email.message.Message) -> list[tuple[str, bool]]:
    """flufl.bounce's verdict: [(address, permanent)]."""
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a detector that trips on a malformed message found nothing
        return []
    out: list[tuple[str, bool]] = []
    for raw, is_permanent in [(a, True) for a in permanent] + [(a, False) for a in temporary]:
        address = raw.decode("ascii", "replace").strip().strip("<>").lower()
        if "@" in address and check_address(address)[0]:
            out.append((address, is_permanent))
    return out


# ---------------------------------------------------------------- the list, the journals, the state


@dataclass
class _Lookup:
    """What the list and the journals say about the addresses, tokens and Message-IDs of this run."""

    on_list: set[str] = field(default_factory=set)
    by_token: dict[str, str] = field(default_factory=dict)
    by_message_id: dict[str, tuple[str, str]] = field(default_factory=dict)  # id → (issue, address)
    sent_issues: dict[str, list[str]] = field(default_factory=dict)  # address → issues sent, oldest first
    delivered: dict[str, int] = field(default_factory=dict)  # issue → addresses sent


def _journals(settings: Settings) -> Iterator[tuple[str, Path]]:
    for issue_id in list_issue_ids(settings.issues_dir):
        yield issue_id, settings.issues_dir / issue_id / JOURNAL_NAME


def _look_up(settings: Settings, readings: Iterable[Reading]) -> _Lookup:
    readings = list(readings)
    ids = {m for r in readings for m in r.message_ids}
    tokens = {t for r in readings for t in r.tokens}
    addresses = {a for r in readings for a in (*(f.address for f in r.failures), *(f.final for f in r.failures),
                                                  *r.named, r.sender) if a}
    found = _Lookup()
    # 1. The journals: which subscriber each returned Message-ID went to.
    if ids:
        for issue_id, path in _journals(settings):
            for entry in read_results(path):
                mid = entry.get("message_id")
                if entry["status"] == SENT and isinstance(mid, str) and mid in ids:
                    found.by_message_id[mid] = (issue_id, email_key(entry["email"]))
    addresses |= {address for _, address in found.by_message_id.values()}
    # 2. The list: who is on it, and whose token each token is.
    name = settings.newsletter.name
    source = SubscriberFile(settings.path(settings.delivery.subscribers))
    for row in source.rows():
        if not isinstance(row, Recipient):
            continue
        key = email_key(row.email)
        if key in addresses:
            found.on_list.add(key)
        if tokens:
            for token in {recipient_token(name, row).lower(), envelope_token(name, row).lower()}:
                if token in tokens:
                    found.by_token.setdefault(token, key)
                    found.on_list.add(key)
    addresses |= set(found.by_token.values())
    # 3. The journals again: which issues each of these addresses was sent.
    for issue_id, path in _journals(settings):
        sent: set[str] = set()
        for entry in read_results(path):
            if entry["status"] == SENT:
                key = email_key(entry["email"])
                sent.add(key)
                if key in addresses:
                    issues = found.sent_issues.setdefault(key, [])
                    if not issues or issues[-1] != issue_id:
                        issues.append(issue_id)
        found.delivered[issue_id] = len(sent)
    return found


def state_path(settings: Settings) -> Path:
    return settings.root / STATE_NAME


def load_state(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"mailboxes": {}, "soft": {}}
    except OSError as exc:
        raise MailboxError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise MailboxError(f"{path}: not readable JSON",
                           "Restore it from git; removing it makes the next run read every message again.") from None
    if not isinstance(data, dict):
        raise MailboxError(f"{path}: not a bounce state file", "Restore it from git, or remove it.")
    data.setdefault("mailboxes", {})
    data.setdefault("soft", {})
    return data


class _Lock:
    """One `cepletter bounces` at a time per workspace."""

    def __init__(self, settings: Settings) -> None:
        self.path = settings.cache_dir / "bounces.lock"
        self.fd: int | None = None

    def __enter__(self) -> _Lock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise MailboxError("another `cepletter bounces` is running in this workspace",
                               "Wait for it to finish, then run it again.") from None
        self.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# ---------------------------------------------------------------- deciding


@dataclass
class Finding:
    """One message (or one recipient of a bounce), tied to the list as far as it can be."""

    key: str  # the message in its mailbox
    kind: str
    email: str = ""  # the subscriber (or, when not on the list, the address the message names)
    issue: str = ""  # "" when it cannot be told
    status: str = ""
    detail: str = ""  # diagnostic, or the request's subject
    action: str = ""  # "suppressed", "counted", "already suppressed", "ignored", "reported", "left unread"
    note: str = ""
    subject: str = ""
    sender: str = ""


@dataclass
class IssueCounts:
    delivered: int = 0
    hard: int = 0
    soft: int = 0
    refused: int = 0
    unsubscribed: int = 0
    auto_replies: int = 0
    not_understood: int = 0


_COUNTER = {HARD: "hard", SOFT: "soft", REFUSED: "refused", UNSUBSCRIBE: "unsubscribed",
            AUTO_REPLY: "auto_replies", NOT_UNDERSTOOD: "not_understood"}


@dataclass
class Report:
    source: str
    dry_run: bool
    read: int = 0
    issues: dict[str, IssueCounts] = field(default_factory=dict)  # "" for what has no issue
    added: list[suppression.Entry] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def attention(self) -> list[Finding]:
        """Findings a person should look at: not understood, or not acted on for a reason."""
        return [f for f in self.findings if f.action in ("reported", "left unread")]

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dry_run": self.dry_run,
            "read": self.read,
            "issues": [{"issue": issue or None, **asdict(counts)} for issue, counts in self.issues.items()],
            "suppressed": [asdict(e) for e in self.added],
            "messages": [asdict(f) for f in self.findings],
            "notes": self.notes,
        }


class _Decider:
    def __init__(self, settings: Settings, lookup: _Lookup, state: dict[str, Any], suppressed: set[str]) -> None:
        self.settings = settings
        self.lookup = lookup
        self.soft_state: dict[str, dict[str, str]] = state["soft"]
        self.suppressed = suppressed
        self.entries: dict[str, suppression.Entry] = {}
        self.findings: list[Finding] = []

    def _issue_for(self, address: str, ids: list[str]) -> str:
        for mid in ids:
            hit = self.lookup.by_message_id.get(mid)
            if hit is not None and hit[1] == address:
                return hit[0]
        sent = self.lookup.sent_issues.get(address)
        return sent[-1] if sent else ""

    def _subscriber(self, reading: Reading, named: str) -> tuple[str, str]:
        """(subscriber, how it was found) for a bounce naming ``named``; ("", why not) when none."""
        for token in reading.tokens:
            if token in self.lookup.by_token:
                return self.lookup.by_token[token], "token"
        for mid in reading.message_ids:
            hit = self.lookup.by_message_id.get(mid)
            if hit is not None:
                return hit[1], "message-id"
        if named in self.lookup.on_list:
            return named, "address"
        return "", "not on the list"

    def _suppress(self, finding: Finding, reason: str, reply: str) -> None:
        address = finding.email
        if address in self.suppressed:
            finding.action = "already suppressed"
            return
        finding.action = "suppressed"
        self.entries.setdefault(address, suppression.Entry(address, reason, issue=finding.issue, reply=reply))

    def decide(self, key: str, reading: Reading) -> None:
        base = {"key": key, "subject": reading.subject, "sender": reading.sender}
        if reading.kind in (HARD, SOFT, REFUSED) or (reading.kind == NOT_UNDERSTOOD and reading.failures):
            single = len(reading.failures) == 1
            for failure in reading.failures:
                finding = Finding(kind=failure.kind, status=failure.status, detail=failure.diagnostic, **base)
                self.findings.append(finding)
                subscriber, how = self._subscriber(reading, failure.address) if single else (
                    (failure.address, "address") if failure.address in self.lookup.on_list else ("", "not on the list"))
                if not subscriber and failure.final in self.lookup.on_list:
                    subscriber, how = failure.final, "address"
                finding.email = subscriber or failure.address
                if failure.kind == NOT_UNDERSTOOD:
                    finding.action, finding.note = "left unread", reading.note
                    continue
                if not subscriber or subscriber not in self.lookup.on_list:
                    finding.action, finding.note = "reported", f"{failure.address} is not on the list"
                    continue
                finding.issue = self._issue_for(subscriber, reading.message_ids)
                if not finding.issue:
                    finding.action = "reported"
                    finding.note = f"{subscriber} was never sent an issue (by the journals)"
                    continue
                if how == "token" and failure.address != subscriber:
                    finding.note = f"returned for {failure.address}"
                self._bounce(finding)
            return
        finding = Finding(kind=reading.kind, note=reading.note, **base)
        self.findings.append(finding)
        if reading.kind == AUTO_REPLY:
            finding.email = reading.sender
            finding.issue = self._issue_for(reading.sender, reading.message_ids) if reading.sender else ""
            finding.action = "ignored"
        elif reading.kind == UNSUBSCRIBE:
            self._unsubscribe(finding, reading)
        else:
            finding.email = reading.sender
            finding.action = "left unread"
            if reading.sender in self.lookup.on_list:
                finding.issue = self._issue_for(reading.sender, reading.message_ids)

    def _bounce(self, finding: Finding) -> None:
        reply = " ".join(p for p in (finding.status, finding.detail) if p)
        if finding.kind == HARD:
            self._suppress(finding, f"bounced {finding.status}".strip(), reply)
        elif finding.kind == SOFT:
            issues = self.soft_state.setdefault(finding.email, {})
            issues.setdefault(finding.issue, finding.status or "soft")
            finding.action = "counted"
            limit = self.settings.bounces.soft_limit
            run = _longest_run(self.lookup.sent_issues.get(finding.email, []), set(issues))
            finding.note = f"{run} of {limit} consecutive issues"
            if run >= limit:
                self._suppress(finding, f"soft bounces in {run} consecutive issues", reply)
        else:
            finding.action = "reported"
            finding.note = "refused for policy or content: about the message, not the address"

    def _unsubscribe(self, finding: Finding, reading: Reading) -> None:
        target = ""
        for token in reading.tokens:
            if token in self.lookup.by_token:
                target = self.lookup.by_token[token]
                break
        if not target:
            others = [a for a in reading.named if a != reading.sender]
            if others:
                finding.email = others[0]
                finding.action = "reported"
                finding.note = (f"asks to unsubscribe {others[0]} but comes from {reading.sender or 'nobody'}: "
                                "not taken without that address's token")
                return
            target = reading.sender
        finding.email = target
        if not target:
            finding.action, finding.note = "reported", "no sender address to unsubscribe"
            return
        if target not in self.lookup.on_list:
            finding.action, finding.note = "reported", f"{target} is not on the list"
            return
        finding.issue = self._issue_for(target, reading.message_ids)
        finding.detail = reading.subject
        self._suppress(finding, UNSUBSCRIBED, f"request: {reading.subject}".strip() if reading.subject else "request by mail")


def _longest_run(sent: list[str], bounced: set[str]) -> int:
    """The most consecutive issues of ``sent`` (in order) that are all in ``bounced``."""
    best = run = 0
    for issue in sent:
        run = run + 1 if issue in bounced else 0
        best = max(best, run)
    return best


# ---------------------------------------------------------------- the run


def process(settings: Settings, source: Source, *, dry_run: bool = False, move_to: str | None = None) -> Report:
    """Read the new messages of ``source``, change the list (unless ``dry_run``) and report."""
    path = settings.suppressed_path
    if path is None:
        raise ConfigError('cepletter.toml: [delivery] suppressed = "": there is no suppression list to add to',
                          'Name one, e.g. suppressed = "suppressed.csv".')
    rules = Rules.of(settings)
    report = Report(source.description, dry_run)
    with _Lock(settings):
        spath = state_path(settings)
        state = load_state(spath)
        box_state = state["mailboxes"].get(source.state_key, {})
        readings: list[tuple[Incoming, Reading]] = []
        try:
            for incoming in source.read(box_state if isinstance(box_state, dict) else {}):
                reading = read_message(incoming.data, rules, truncated=incoming.truncated)
                readings.append((_slim(incoming), reading))
            report.notes += getattr(source, "notes", [])
            suppressed = read_suppressed(path) if path.exists() else set()
            lookup = _look_up(settings, (r for _, r in readings))
            decider = _Decider(settings, lookup, state, suppressed)
            for incoming, reading in readings:
                decider.decide(incoming.key, reading)
            report.read = len(readings)
            report.findings = decider.findings
            entries = list(decider.entries.values())
            if dry_run:
                report.added = [e if e.date else suppression.Entry(e.email, e.reason, e.issue, e.reply,
                                                                    date.today().isoformat()) for e in entries]
            else:
                report.added = suppression.add(path, entries) if entries else []
                state["mailboxes"][source.state_key] = source.new_state()
                atomic_write_text(spath, json.dumps(state, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
                # What needs a person's eyes stays unread where it is.
                understood = sorted({f.key for f in decider.findings}
                                    - {f.key for f in decider.findings if f.action in ("reported", "left unread")})
                source.finish(understood, move_to)
            _count(report, lookup)
        finally:
            source.close()
    return report


def _slim(incoming: Incoming) -> Incoming:
    return Incoming(incoming.key, b"", incoming.size)  # the bytes are not needed once read


def _count(report: Report, lookup: _Lookup) -> None:
    counted: set[tuple[str, str]] = set()
    for finding in report.findings:
        counts = report.issues.setdefault(finding.issue, IssueCounts(delivered=lookup.delivered.get(finding.issue, 0)))
        # A DSN and a later "final" DSN for the same address and issue are one bounce.
        mark = (finding.key, finding.email)
        if mark in counted:
            continue
        counted.add(mark)
        # A request that was not taken is not an unsubscription: it waits for a person.
        name = _COUNTER[NOT_UNDERSTOOD if finding.kind == UNSUBSCRIBE and finding.action == "reported" else finding.kind]
        setattr(counts, name, getattr(counts, name) + 1)
    report.issues = dict(sorted(report.issues.items(), key=lambda kv: (kv[0] == "", kv[0])))
