"""From candidate items to a drafted issue: the window, the numbering, the
pick, and the new ``issues/<ID>/issue.md``.

``items`` and ``draft`` share ``candidates()`` so that the numbers ``items``
shows are the numbers ``draft --pick`` takes, for the same options.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from cepletter import dates, i18n
from cepletter.config import Settings, SourceSettings
from cepletter.errors import ConfigError, IssueError, UsageError
from cepletter.issue.folder import earlier_issue_ids, new_issue_path
from cepletter.sources.items import Item

if TYPE_CHECKING:
    from cepletter.issue.file import Issue, IssueItem

Warn = Callable[[str], None]

DEFAULT_HEADING = "News"
_MONTH_ID = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass
class Window:
    """Which items are candidates: newer than ``since`` and not used before."""

    since: datetime | None
    reason: str  # for messages: "since 2025-12-18 (issue 2025-12)", "all items", ...
    used: frozenset[str] = frozenset()  # ids and links of items in earlier issues


def zone(settings: Settings | None) -> ZoneInfo:
    return ZoneInfo(settings.newsletter.timezone if settings is not None else "UTC")


def today(settings: Settings | None) -> date:
    return datetime.now(zone(settings)).date()


def default_issue_id(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


# ---------------------------------------------------------------- sources

def select_sources(settings: Settings | None, names: Sequence[str], feeds: Sequence[str],
                   cwd: Path) -> list[SourceSettings]:
    """The sources to read: the ``--feed``s if any, else the workspace's (``--source`` filters)."""
    from cepletter.sources.reader import adhoc_source, source_kind

    if feeds:
        chosen = []
        for feed in feeds:
            source = adhoc_source(feed)
            if source.path is not None and not Path(source.path).expanduser().is_absolute():
                source = SourceSettings(name=source.name, path=str(cwd / source.path))
            chosen.append(source)
        return chosen
    if settings is None:
        raise UsageError("no workspace here, and no --feed given",
                         "Run inside a workspace (see `cepletter init`), or give --feed URL_OR_PATH.")
    root = settings.root
    readable = [s for s in settings.sources if source_kind(s, root) != "ics"]
    if names:
        known = {s.name: s for s in settings.sources}
        for name in names:
            if name not in known:
                listed = ", ".join(sorted(known)) or "none"
                raise UsageError(f"--source {name}: no source of that name in cepletter.toml",
                                 f"Sources: {listed}.")
        readable = [s for s in readable if s.name in names]
        if not readable:
            raise UsageError("--source: only calendar sources chosen; they have no news items",
                             "Calendars fill the issue's events section in `cepletter draft`.")
    if not readable:
        raise ConfigError(f"{settings.config_path.name}: no [[sources]] with news items",
                          'Add [[sources]] with name = "news" and url = "https://.../feed/".')
    return readable


# ---------------------------------------------------------------- the window

def parse_day(text: str, option: str) -> date:
    """A day given on the command line as YYYY-MM-DD."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option} {text}: not a date", f"Write it as YYYY-MM-DD, e.g. {option} 2025-10-15.") from None


def parse_since(text: str, settings: Settings | None) -> datetime:
    return datetime.combine(parse_day(text, "--since"), time(0, 0), tzinfo=zone(settings))


def window(settings: Settings | None, issue_id: str, *, since: datetime | None = None,
           days: int | None = None, all_items: bool = False) -> Window:
    """The candidates' window for ``issue_id``: --since/--days, else since the latest earlier issue."""
    if since is not None and days is not None:
        raise UsageError("--since and --days cannot be used together", "Give one of them.")
    if days is not None:
        if days < 0:
            raise UsageError(f"--days {days}: must be 0 or more")
        # More days than there are since 1900 means "everything" (and no date overflow).
        days = min(days, (today(settings) - date(1900, 1, 1)).days)
        since = datetime.combine(today(settings) - timedelta(days=days), time(0, 0), tzinfo=zone(settings))
    earlier = earlier_issue_ids(settings.issues_dir, issue_id) if settings is not None else []
    used: set[str] = set()
    reason = f"since {since.date().isoformat()}" if since is not None else "no date limit"
    if earlier and settings is not None:
        from cepletter.issue.file import load
        from cepletter.issue.folder import issue_path

        latest = None
        for earlier_id in earlier:
            issue = load(issue_path(settings.issues_dir, earlier_id))
            latest = issue
            if not all_items:
                for item in issue.items:
                    used.add(item.id)
                    used.add(item.link)
        if since is None and latest is not None:
            # Items from the day of the last issue on: what it used is left out below.
            since = datetime.combine(latest.date, time(0, 0), tzinfo=zone(settings))
            reason = f"since {latest.date.isoformat()} (issue {latest.id})"
    return Window(since=since, reason=reason, used=frozenset(used))


def candidates(items: Sequence[Item], win: Window) -> list[Item]:
    """The items to offer, numbered by their position: newest first, undated last."""
    # A link shared by several items (a feed's home page given for each) says
    # nothing about which of them was used; only a link of one item does.
    links: dict[str, int] = {}
    for item in items:
        links[item.link] = links.get(item.link, 0) + 1
    chosen = []
    for item in items:
        if win.since is not None and item.date is not None and item.date < win.since:
            continue
        if item.id in win.used or (item.link in win.used and links[item.link] == 1):
            continue
        chosen.append(item)
    dated = sorted((i for i in chosen if i.date is not None), key=lambda i: i.date, reverse=True)  # type: ignore[arg-type, return-value]
    return dated + [i for i in chosen if i.date is None]


# ---------------------------------------------------------------- picking

_PART = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_pick(spec: str, count: int) -> list[int]:
    """``"3,1,5-7"`` → [3, 1, 5, 6, 7]: item numbers in the order given (1-based)."""
    if count == 0:
        raise UsageError("there are no items to pick", "See `cepletter items`; try --days or --all-items.")
    numbers: list[int] = []
    for part in spec.split(","):
        match = _PART.match(part)
        if not match:
            shown = part.strip() or "(empty)"
            raise UsageError(f"--pick {spec}: {shown!r} is not a number or a range like 5-7",
                             f"Use item numbers from `cepletter items` (1 to {count}), e.g. --pick 3,1,5-7.")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if last < first:
            raise UsageError(f"--pick {spec}: the range {first}-{last} runs backwards",
                             f"Write it as {last}-{first}, or list the numbers in the order you want.")
        for number in range(first, last + 1):
            if not 1 <= number <= count:
                raise UsageError(f"--pick {spec}: there is no item {number}",
                                 f"There are {count} items (1 to {count}); see `cepletter items`.")
            if number in numbers:
                raise UsageError(f"--pick {spec}: item {number} is picked twice", "Give each number once.")
            numbers.append(number)
    return numbers


# ---------------------------------------------------------------- the issue

def month_name(issue_id: str, day: date, language: str = "en") -> str:
    """The month an issue is for, in words: its ID's (2026-02), else its date's."""
    match = _MONTH_ID.match(issue_id)
    if match and 1 <= int(match.group(2)) <= 12:
        return dates.month_year(int(match.group(1)), int(match.group(2)), language)
    return dates.month_year(day.year, day.month, language)


def default_heading(language: str = "en") -> str:
    """The heading of items without a category ("News"), in ``language``."""
    return i18n.catalogue(language).gettext("News")  # DEFAULT_HEADING


def default_texts(month: str, name: str, language: str = "en") -> tuple[str, str]:
    """(title, intro) that `draft` writes, in ``language``: "Newsletter December 2026" and a placeholder intro."""
    tr = i18n.catalogue(language)
    # Translators: the title `draft` gives an issue; %(month)s is a month as the language writes it ("December 2026").
    title = tr.gettext("Newsletter %(month)s") % {"month": month}
    intro = (
        tr.gettext("Welcome to the %(month)s issue of the %(name)s.") % {"month": month, "name": name}
        + "\n\n_"
        + tr.gettext("Replace these lines with a short introduction: what stands out in this issue, "
                     "and what is coming up. This text is Markdown.")
        + "_\n"
    )
    return title, intro


def preheader(items: Sequence[Item | IssueItem], limit: int = 110) -> str:
    """"In this issue: A; B; C" from the first items' titles (see `cepletter.issue.preheader`)."""
    from cepletter.issue.preheader import from_items

    return from_items(items, limit)


# What `check` and `send` recognise as an intro nobody wrote yet.
PLACEHOLDER_INTRO = "Replace these lines with a short introduction"


def placeholder_intros() -> list[str]:
    """The start of the placeholder intro as `draft` writes it in every shipped language, English first."""
    found = [PLACEHOLDER_INTRO]
    for language in i18n.SHIPPED:
        _title, intro = default_texts("", "", language)
        sentence = intro.split("\n\n_", 1)[-1]
        start = sentence.split(":", 1)[0].replace("\u00a0", " ").strip()
        if start and start not in found:
            found.append(start)
    return found


def snapshot(item: Item, settings: Settings | None) -> IssueItem:
    """The issue's copy of a candidate: what the feed said, dated as the editors read dates."""
    from cepletter.issue.file import IssueItem

    if not item.link.lower().startswith(("http://", "https://")):
        raise IssueError(f"item {item.title!r} from {item.source} has no web address",
                         "Its \"Read more\" needs one: leave the item out, or add a link to the source.")
    snap = IssueItem.from_item(item)
    if item.date is not None:
        snap.date = item.date.astimezone(zone(settings))
    return snap


def build_issue(picked: Sequence[Item], *, issue_id: str, issue_date: date, settings: Settings | None,
                title: str | None = None, intro: str | None = None) -> Issue:
    """The new Issue: sections by category in order of first appearance; ``intro``, or a placeholder to replace."""
    from cepletter.issue.file import Issue, Section

    if not picked:
        raise UsageError("no items picked", "Pick at least one item.")
    snapshots = [snapshot(item, settings) for item in picked]
    language = settings.newsletter.language if settings is not None else i18n.SOURCE
    month = month_name(issue_id, issue_date, language)
    name = settings.newsletter.name if settings is not None else "Newsletter"
    sections: dict[str, Section] = {}
    for item, snap in zip(picked, snapshots, strict=True):
        heading = item.category or default_heading(language)
        sections.setdefault(heading, Section(heading=heading)).items.append(snap)
    default_title, placeholder = default_texts(month, name, language)
    return Issue(
        id=issue_id,
        title=title or default_title,
        subject=title or f"{name} – {month}",
        date=issue_date,
        preheader="",  # made from the items when rendered, so it follows them
        sections=list(sections.values()),
        intro=intro.strip() + "\n" if intro and intro.strip() else placeholder,
    )


def add_events(settings: Settings, issue: Issue, warn: Callable[[str], None] | None = None) -> None:
    """Fill the issue's events from the calendar sources, if there are any."""
    from cepletter.sources.reader import source_kind

    if any(source_kind(s, settings.root) == "ics" for s in settings.sources):
        from cepletter.sources.events import upcoming_events

        issue.events = upcoming_events(settings, issue.date, warn=warn)


def replaceable_path(settings: Settings, issue_id: str, *, force: int = 0, sent: int = 0) -> Path:
    """Where ``draft`` writes issue ``issue_id``; an error when that would lose something.

    An existing issue file is replaced only with ``force`` (its copy is kept,
    see `save_draft`); one that has gone out (``sent``: addresses its send log
    has a "sent" line for) only with ``force`` given twice.
    """
    path = new_issue_path(settings.root, settings.issues_dir, issue_id, force=force > 0)
    if path.exists() and sent and force < 2:
        shown = path.relative_to(settings.root).as_posix() if path.is_relative_to(settings.root) else str(path)
        people = "1 subscriber" if sent == 1 else f"{sent:,} subscribers"
        raise IssueError(
            f"{shown} has already gone out: its send-log.jsonl records it sent to {people}",
            "Draft a new issue with --issue ID. To replace this one anyway (the sent copy is "
            "kept as a backup), give --force twice: --force --force.",
        )
    return path


def backup_path(path: Path) -> Path:
    """The first free backup name for ``path``: ``issue.md.bak``, then ``issue.md.bak.2``, ``.3``, ..."""
    candidate = path.with_name(path.name + ".bak")
    number = 2
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.bak.{number}")
        number += 1
    return candidate


def save_draft(settings: Settings, issue: Issue, *, force: bool = False,
               on_backup: Callable[[Path], None] | None = None) -> Path:
    """Write ``issues/<ID>/issue.md`` atomically; an existing one only with ``force``.

    The file replaced is copied first to a backup (`backup_path`), which
    ``on_backup`` is told about: ``--force`` never loses an edited intro.
    """
    from cepletter.fsutil import atomic_write_bytes
    from cepletter.issue.file import save

    path = new_issue_path(settings.root, settings.issues_dir, issue.id, force=force)
    try:
        previous = path.read_bytes()
    except FileNotFoundError:
        previous = None
    except OSError as exc:
        raise IssueError(f"{path}: cannot read the issue file to keep a copy: {exc.strerror}",
                         "Nothing was replaced; check the file's permissions.") from None
    if previous is not None:
        backup = backup_path(path)
        try:
            atomic_write_bytes(backup, previous)
        except OSError as exc:
            raise IssueError(f"{backup}: cannot keep a copy of the issue file: {exc.strerror}",
                             "Nothing was replaced; check the folder's permissions and free space.") from None
        if on_backup is not None:
            on_backup(backup)
    save(issue, path)
    return path
