"""cepletter.toml → typed settings, and finding the workspace.

Every problem is a ConfigError naming the file, the key and (where it can be
found) the line, so that a person can open the file and fix it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cepletter.errors import ConfigError, WorkspaceError

CONFIG_NAME = "cepletter.toml"


@dataclass(frozen=True)
class UtmSettings:
    source: str = "newsletter"
    medium: str = "email"
    campaign: str = "{issue}"


@dataclass(frozen=True)
class NewsletterSettings:
    name: str
    from_: str
    reply_to: str | None = None
    web_url: str | None = None
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None
    subscribe_url: str | None = None  # the web archive's Subscribe link
    # The line above the intro: {name} is the subscriber's name; greeting_fallback is the
    # line for one without a name; "" for no greeting. None: the theme's, in the edition's language.
    greeting: str | None = None
    greeting_fallback: str | None = None
    postal_address: str = ""
    language: str = "en"
    timezone: str = "Europe/Brussels"
    list_id: str | None = None
    utm: UtmSettings | None = None


@dataclass(frozen=True)
class SourceSettings:
    name: str
    url: str | None = None
    path: str | None = None
    kind: str | None = None  # "feed" | "markdown" | "ics"; inferred when None

    @property
    def location(self) -> str:
        return self.url or self.path or ""


@dataclass(frozen=True)
class FetchSettings:
    timeout: float = 20.0
    max_bytes: int = 32 * 1024 * 1024
    max_redirects: int = 5
    max_items: int = 10_000


@dataclass(frozen=True)
class DeliverySettings:
    transport: str = "maildir"
    maildir: str = "outbox"
    subscribers: str = "subscribers.csv"
    # Addresses never to mail. A missing file stops a send; only an explicit "" means no list.
    suppressed: str = "suppressed.csv"
    # The envelope sender (MAIL FROM) where relays return bounces; "{token}" makes it one per
    # subscriber (VERP), so a bounce names its subscriber even when it quotes nothing else.
    return_path: str | None = None
    # A ceiling, the relay's quota: under it the pace adapts when the relay asks to slow down.
    rate: float = 100.0
    connections: int = 4
    retries: int = 5
    retry_max_seconds: float = 600.0
    # A message whose verdict never came (connection lost after the final dot) may be sent once more.
    retry_uncertain: bool = True


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"
    username: str | None = None
    ca_file: str | None = None
    timeout: float = 60.0


@dataclass(frozen=True)
class BounceSettings:
    """Where returned mail is read (an IMAP folder), and when soft bounces suppress an address."""

    host: str | None = None
    port: int | None = None  # None: 993 for "ssl", 143 otherwise
    security: str = "ssl"
    username: str | None = None
    folder: str = "INBOX"
    ca_file: str | None = None
    timeout: float = 60.0
    soft_limit: int = 3  # soft bounces in this many consecutive issues suppress the address

    @property
    def imap_port(self) -> int:
        return self.port if self.port is not None else (993 if self.security == "ssl" else 143)


@dataclass(frozen=True)
class Settings:
    """Everything in cepletter.toml, with paths resolved against the workspace."""

    root: Path
    newsletter: NewsletterSettings
    sources: tuple[SourceSettings, ...] = ()
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    smtp: SmtpSettings | None = None
    fetch: FetchSettings = field(default_factory=FetchSettings)
    bounces: BounceSettings = field(default_factory=BounceSettings)

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def issues_dir(self) -> Path:
        return self.root / "issues"

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"

    @property
    def cache_dir(self) -> Path:
        return self.root / ".cepletter-cache"

    def path(self, value: str) -> Path:
        """A path from the config, relative to the workspace."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.root / p

    @property
    def suppressed_path(self) -> Path | None:
        """The suppression list; None only when cepletter.toml says ``suppressed = ""``."""
        return self.path(self.delivery.suppressed) if self.delivery.suppressed else None


# ---------------------------------------------------------------- schema

# key -> (python types accepted, required, allowed values or None)
_Spec = tuple[tuple[type, ...], bool, tuple[Any, ...] | None]

_STR: tuple[type, ...] = (str,)
_NUM: tuple[type, ...] = (int, float)
_INT: tuple[type, ...] = (int,)

_NEWSLETTER: dict[str, _Spec] = {
    "name": (_STR, True, None),
    "from": (_STR, True, None),
    "reply_to": (_STR, False, None),
    "web_url": (_STR, False, None),
    "unsubscribe_url": (_STR, False, None),
    "unsubscribe_mailto": (_STR, False, None),
    "subscribe_url": (_STR, False, None),
    "greeting": (_STR, False, None),
    "greeting_fallback": (_STR, False, None),
    "postal_address": (_STR, False, None),
    "language": (_STR, False, None),
    "timezone": (_STR, False, None),
    "list_id": (_STR, False, None),
    "utm": ((dict,), False, None),
}
_UTM: dict[str, _Spec] = {
    "source": (_STR, False, None),
    "medium": (_STR, False, None),
    "campaign": (_STR, False, None),
}
_SOURCE: dict[str, _Spec] = {
    "name": (_STR, True, None),
    "url": (_STR, False, None),
    "path": (_STR, False, None),
    "kind": (_STR, False, ("feed", "markdown", "ics")),
}
_FETCH: dict[str, _Spec] = {
    "timeout": (_NUM, False, None),
    "max_bytes": (_INT, False, None),
    "max_redirects": (_INT, False, None),
    "max_items": (_INT, False, None),
}
_DELIVERY: dict[str, _Spec] = {
    "transport": (_STR, False, ("maildir", "smtp")),
    "maildir": (_STR, False, None),
    "subscribers": (_STR, False, None),
    "suppressed": (_STR, False, None),
    "return_path": (_STR, False, None),
    "rate": (_NUM, False, None),
    "connections": (_INT, False, None),
    "retries": (_INT, False, None),
    "retry_max_seconds": (_NUM, False, None),
    "retry_uncertain": ((bool,), False, None),
}
_SMTP: dict[str, _Spec] = {
    "host": (_STR, True, None),
    "port": (_INT, False, None),
    "security": (_STR, False, ("starttls", "ssl", "none")),
    "username": (_STR, False, None),
    "ca_file": (_STR, False, None),
    "timeout": (_NUM, False, None),
}
_BOUNCES: dict[str, _Spec] = {
    "host": (_STR, False, None),
    "port": (_INT, False, None),
    "security": (_STR, False, ("ssl", "starttls", "none")),
    "username": (_STR, False, None),
    "folder": (_STR, False, None),
    "ca_file": (_STR, False, None),
    "timeout": (_NUM, False, None),
    "soft_limit": (_INT, False, None),
}
_TOP = {"newsletter", "sources", "delivery", "smtp", "fetch", "bounces"}

_TYPE_NAMES = {str: "a string", int: "a whole number", float: "a number", dict: "a table", bool: "true or false"}


class _Checker:
    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def line_of(self, table: str | None, key: str) -> int | None:
        """Best-effort line number of ``key`` inside ``[table]`` (for messages)."""
        current: str | None = None
        pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
        for number, line in enumerate(self.lines, start=1):
            header = re.match(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?", line)
            if header:
                current = header.group(1)
                continue
            if current == table and pattern.match(line):
                return number
        return None

    def fail(self, table: str | None, key: str, problem: str, hint: str) -> ConfigError:
        line = self.line_of(table, key.split(".")[-1])
        where = f"{self.path.name}" + (f", line {line}" if line else "")
        name = f"[{table}] {key}" if table else key
        return ConfigError(f"{where}: {name}: {problem}", hint)

    def check(self, table: str, data: Any, spec: dict[str, _Spec], label: str | None = None) -> dict[str, Any]:
        label = label or table
        if not isinstance(data, dict):
            raise self.fail(None, table, "must be a table", f"Write it as [{table}] with keys below it.")
        for key in data:
            if key not in spec:
                known = ", ".join(sorted(spec))
                raise self.fail(table, key, "unknown key", f"Remove it or check the spelling; known keys: {known}.")
        out: dict[str, Any] = {}
        for key, (types, required, allowed) in spec.items():
            if key not in data:
                if required:
                    raise ConfigError(
                        f"{self.path.name}: [{label}] {key}: missing required key",
                        f'Add {key} = ... under [{table}].',
                    )
                continue
            value = data[key]
            ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
            if not ok:
                wanted = "a number" if float in types else _TYPE_NAMES.get(types[0], types[0].__name__)
                raise self.fail(table, key, f"expected {wanted}, got {value!r}", "Fix the value's type (strings need quotes).")
            if allowed is not None and value not in allowed:
                choices = ", ".join(repr(a) for a in allowed)
                raise self.fail(table, key, f"{value!r} is not one of {choices}", f"Use one of {choices}.")
            out[key] = value
        return out


def find_workspace(start: Path) -> Path:
    """The folder holding cepletter.toml: ``start`` or the nearest parent."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder
    raise WorkspaceError(
        f"no {CONFIG_NAME} in {start} or any folder above it",
        "Run `cepletter init` to make a workspace here, or use `cepletter -C DIR ...`.",
    )


def load_settings(root: Path) -> Settings:
    """Read and check ``root/cepletter.toml``."""
    path = root / CONFIG_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise WorkspaceError(
            f"{path}: not found", "Run `cepletter init` to make a workspace, or use -C DIR."
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigError(f"{path.name}: not UTF-8 text", "Save the file as UTF-8.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: {exc}", "Fix the TOML syntax at that line.") from None
    return settings_from_dict(root, data, path, text)


def settings_from_dict(root: Path, data: dict[str, Any], path: Path, text: str = "") -> Settings:
    c = _Checker(path, text)
    for key in data:
        if key not in _TOP:
            raise c.fail(None, key, "unknown table or key", f"Known tables: {', '.join(sorted(_TOP))}.")
    if "newsletter" not in data:
        raise ConfigError(f"{path.name}: [newsletter]: missing required table", "Add a [newsletter] table with name and from.")
    nl = c.check("newsletter", data["newsletter"], _NEWSLETTER)
    utm = None
    if "utm" in nl:
        utm = UtmSettings(**c.check("newsletter.utm", nl.pop("utm"), _UTM))
    nl["from_"] = nl.pop("from")
    newsletter = NewsletterSettings(**nl, utm=utm)
    _check_timezone(c, newsletter.timezone)
    _check_greeting(c, newsletter)
    _check_header_values(c, newsletter)
    _check_language(c, newsletter.language)
    _check_urls(c, newsletter)

    raw_sources = data.get("sources", [])
    if not isinstance(raw_sources, list):
        raise c.fail(None, "sources", "must be a list of [[sources]] tables", "Write each source as [[sources]].")
    sources: list[SourceSettings] = []
    seen: set[str] = set()
    for entry in raw_sources:
        s = c.check("sources", entry, _SOURCE)
        if ("url" in s) == ("path" in s):
            raise c.fail("sources", "url", f"source {s['name']!r} needs exactly one of url or path",
                         "Give url = \"https://...\" for a web feed or path = \"file\" for a local file.")
        if s["name"] in seen:
            raise c.fail("sources", "name", f"two sources are named {s['name']!r}", "Give each source its own name.")
        seen.add(s["name"])
        sources.append(SourceSettings(**s))

    delivery = DeliverySettings(**c.check("delivery", data.get("delivery", {}), _DELIVERY))
    if delivery.rate <= 0:
        raise c.fail("delivery", "rate", "must be more than 0", "Set messages per second, e.g. rate = 10.")
    if not 1 <= delivery.connections <= 50:
        raise c.fail("delivery", "connections", "must be between 1 and 50", "Use a small number such as 2.")
    if delivery.retries < 0 or delivery.retry_max_seconds < 0:
        raise c.fail("delivery", "retries", "must not be negative", "Use 0 or more.")
    if not delivery.subscribers.strip():
        raise c.fail("delivery", "subscribers", "is empty", 'Name the list, e.g. "subscribers.csv".')
    if delivery.suppressed != delivery.suppressed.strip():
        # "  " is not taken for "no list": sending with no suppression list is never an accident.
        raise c.fail("delivery", "suppressed", f"{delivery.suppressed!r} has spaces around the file name",
                     'Write the name alone, e.g. "suppressed.csv" (suppressed = "" means no suppression list).')
    smtp = SmtpSettings(**c.check("smtp", data["smtp"], _SMTP)) if "smtp" in data else None
    if delivery.transport == "smtp" and smtp is None:
        raise ConfigError(f"{path.name}: [smtp]: missing, but [delivery] transport = \"smtp\"",
                          "Add an [smtp] table with host, port and security.")
    if smtp is not None and not 0 < smtp.port < 65536:
        raise c.fail("smtp", "port", f"{smtp.port} is not a port number", "Use 587 (starttls), 465 (ssl) or 25.")
    if smtp is not None and smtp.timeout <= 0:
        raise c.fail("smtp", "timeout", "must be more than 0 seconds", "Use for example timeout = 60.")
    fetch = FetchSettings(**c.check("fetch", data.get("fetch", {}), _FETCH))
    for key in ("timeout", "max_bytes", "max_items"):
        if getattr(fetch, key) <= 0:
            raise c.fail("fetch", key, "must be more than 0", "Remove it to use the default.")
    if fetch.max_redirects < 0:
        raise c.fail("fetch", "max_redirects", "must not be negative", "Use 0 or more, e.g. 5.")
    _check_return_path(c, delivery.return_path)
    bounces = BounceSettings(**c.check("bounces", data.get("bounces", {}), _BOUNCES))
    if not 0 < bounces.imap_port < 65536:
        raise c.fail("bounces", "port", f"{bounces.imap_port} is not a port number", "Use 993 (ssl) or 143 (starttls).")
    if bounces.timeout <= 0:
        raise c.fail("bounces", "timeout", "must be more than 0 seconds", "Use for example timeout = 60.")
    if bounces.soft_limit < 1:
        raise c.fail("bounces", "soft_limit", "must be 1 or more", "Use for example soft_limit = 3.")
    return Settings(root=root, newsletter=newsletter, sources=tuple(sources), delivery=delivery, smtp=smtp, fetch=fetch,
                    bounces=bounces)


_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")


def _check_return_path(c: _Checker, value: str | None) -> None:
    """A wrong envelope sender would lose every bounce of a send, so it is an error now."""
    if value is None:
        return
    local, at, domain = value.rpartition("@")
    plain = local.replace("{token}", "x")
    if not at or not _LOCAL_PART.fullmatch(plain) or not re.fullmatch(r"[A-Za-z0-9.-]+\.[A-Za-z]{2,63}", domain):
        raise c.fail("delivery", "return_path", f"{value!r} is not an email address",
                     'Write it like return_path = "bounces+{token}@example.org".')
    for name in _PLACEHOLDER.findall(local):
        if name != "token":
            raise c.fail("delivery", "return_path", f"unknown placeholder {{{name}}}",
                         "Use {token} for the per-subscriber code, or no placeholder.")


# A line break (or another control character) in a value that goes into a header.
_HEADER_BREAK = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]")


def _check_header_values(c: _Checker, nl: NewsletterSettings) -> None:
    """A line break would end the header: what follows it would be sent as headers of its own."""
    for key, value in (("from", nl.from_), ("reply_to", nl.reply_to), ("list_id", nl.list_id),
                       ("unsubscribe_mailto", nl.unsubscribe_mailto), ("name", nl.name)):
        if value and _HEADER_BREAK.search(value):
            raise c.fail("newsletter", key, f"{value!r} has a line break or control character in it",
                         f"Write {key} on one line, without \\n or \\t, "
                         'like from = "CEP <newsletter@example.org>".')


def _check_greeting(c: _Checker, nl: NewsletterSettings) -> None:
    """A greeting with {name} needs the line for a subscriber without a name; {name} is its only placeholder."""
    for key, value in (("greeting", nl.greeting), ("greeting_fallback", nl.greeting_fallback)):
        for name in _PLACEHOLDER.findall(value or ""):
            if name != "name" or key == "greeting_fallback":
                raise c.fail("newsletter", key, f"{{{name}}} cannot be filled in here",
                             'Write {name} in greeting only, e.g. greeting = "Dear {name},".')
        if value is not None and "\n" in value:
            raise c.fail("newsletter", key, "must be one line", 'Write it like greeting = "Dear {name},".')
    if nl.greeting and "{name}" in nl.greeting and not (nl.greeting_fallback or "").strip():
        raise ConfigError(
            f"{c.path.name}: [newsletter] greeting_fallback: missing; {nl.greeting!r} needs a line for "
            "subscribers without a name",
            'Add greeting_fallback = "Dear reader," (in the greeting\'s language) under [newsletter].',
        )


def _check_timezone(c: _Checker, name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise c.fail("newsletter", "timezone", f"unknown time zone {name!r}",
                     'Use a name such as "Europe/Brussels".') from None


def _check_language(c: _Checker, tag: str) -> None:
    # The shape only: whether CLDR knows the language is asked when rendering (see cepletter.i18n),
    # which keeps Babel out of commands that render nothing.
    from cepletter.i18n import is_tag

    if not is_tag(tag):
        raise c.fail("newsletter", "language", f"{tag!r} is not a language code",
                     'Use a code such as "en", "fr", "nl" or "pt-BR".')


_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def _check_urls(c: _Checker, nl: NewsletterSettings) -> None:
    """A mistyped link here would be wrong in every message sent, so it is an error now."""
    from urllib.parse import urlsplit

    for key, value, schemes in (("web_url", nl.web_url, ("http", "https")),
                                ("unsubscribe_url", nl.unsubscribe_url, ("http", "https", "mailto")),
                                ("subscribe_url", nl.subscribe_url, ("http", "https", "mailto"))):
        if not value:
            continue
        parts = urlsplit(value)
        if parts.scheme.lower() not in schemes or (parts.scheme.lower() != "mailto" and not parts.netloc):
            raise c.fail("newsletter", key, f"{value!r} is not a full {' or '.join(schemes)} address",
                         'Write it like "https://example.org/...".')
    for name in _PLACEHOLDER.findall(nl.unsubscribe_url or ""):
        if name not in ("email", "token"):
            raise c.fail("newsletter", "unsubscribe_url", f"unknown placeholder {{{name}}}",
                         "Use {email} for the address or {token} for a per-address code.")


def setting_line(settings: Settings, table: str, key: str) -> int | None:
    """The line of ``key`` in ``[table]`` of the workspace's cepletter.toml (None when not found)."""
    try:
        text = settings.config_path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
    return _Checker(settings.config_path, text).line_of(table, key)
