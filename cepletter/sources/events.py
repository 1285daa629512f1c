"""Upcoming events from iCalendar sources, for the issue's events section.

Each source of kind "ics" (an .ics file or URL) is read with ``icalendar``;
recurring events are expanded with ``recurring-ical-events`` (RRULE, RDATE,
EXDATE and moved or cancelled instances). Times are shown in the
organisation's time zone, all-day events stay dates.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from cepletter.errors import SourceError
from cepletter.fsutil import atomic_write_bytes, atomic_write_text
from cepletter.sources.items import Event

if TYPE_CHECKING:
    from cepletter.config import Settings, SourceSettings

_HTTP = re.compile(r"^https?://[^\s/]+\S*$", re.I)

# A rule such as "every second, for ever" has millions of occurrences in an
# issue's window, and the expansion walks every step from the event's first
# day. Three bounds keep a calendar cheap to read and the issue short:
EXPANSION_STEPS = 50_000  # rule steps one calendar may cost (a few tenths of a second)
MAX_OCCURRENCES = 62  # occurrences of one event listed: every day of a two-month window
MAX_EVENTS = 200  # events listed in all

_SECONDS = {"SECONDLY": 1, "MINUTELY": 60, "HOURLY": 3600, "DAILY": 86_400, "WEEKLY": 604_800,
            "MONTHLY": 2_629_746, "YEARLY": 31_556_952}
# Parts that give several occurrences per step of FREQ (BYSETPOS only picks among them).
_EXPANDING = ("BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYMONTH")


def is_ics_source(source: SourceSettings) -> bool:
    """Whether a configured source is a calendar (kind "ics", or a location ending .ics)."""
    from cepletter.sources.reader import source_kind

    return source_kind(source) == "ics"


def add_months(start: date, months: int) -> date:
    """``start`` moved by whole months; the day is clamped (31 Jan + 1 month = 28/29 Feb)."""
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def upcoming_events(
    settings: Settings, start: date, *, months: int = 2, warn: Callable[[str], None] | None = None
) -> list[Event]:
    """Events of every ics source from ``start`` (inclusive) to ``start`` + ``months`` (exclusive).

    An event is included when any part of it falls in that window, so a
    conference that began the day before is still listed. Sorted by start.
    ``warn`` hears about a remote calendar that could not be fetched and whose
    last copy was used instead.
    """
    zone = ZoneInfo(settings.newsletter.timezone)
    end = add_months(start, months)
    events: list[Event] = []
    for source in settings.sources:
        if is_ics_source(source):
            data = read_calendar_bytes(settings, source, warn=warn)
            events.extend(events_between(data, start, end, zone, source.name, warn=warn))
    events.sort(key=lambda e: (_sort_key(e.start, zone), e.title))
    if len(events) > MAX_EVENTS:
        if warn is not None:
            warn(f"the calendars have {len(events):,} events from {start.isoformat()} to {end.isoformat()}; "
                 f"only the first {MAX_EVENTS} are in the issue")
        del events[MAX_EVENTS:]
    return events


def read_calendar_bytes(
    settings: Settings, source: SourceSettings, *, warn: Callable[[str], None] | None = None
) -> bytes:
    """The raw bytes of a calendar source: a local file, or an http(s) URL via the fetcher."""
    if source.url is not None:
        url = source.url
        if url.lower().startswith("webcal://"):
            # Calendar apps hand out subscription links as webcal://; it is plain HTTPS.
            url = "https://" + url[len("webcal://"):]
        try:
            return _fetch_calendar(settings, url)
        except SourceError as exc:
            stale = _cached_copy(settings, url)
            if stale is None:
                raise SourceError(f"source {source.name!r}: {exc.message}", exc.hint) from None
            # Like a feed that is down: the last copy is better than no events at all.
            if warn is not None:
                warn(f"source {source.name!r}: {exc.message}; using the copy fetched before")
            return stale
    path = settings.path(source.path or "")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SourceError(
            f"source {source.name!r}: calendar file {path} not found",
            f"Check path = \"{source.path}\" in cepletter.toml (it is relative to the workspace).",
        ) from None
    except IsADirectoryError:
        raise SourceError(
            f"source {source.name!r}: {path} is a folder, not a calendar file",
            "Point path at an .ics file.",
        ) from None
    except OSError as exc:
        raise SourceError(f"source {source.name!r}: cannot read {path}: {exc.strerror}") from None


def _cache_path(settings: Settings, url: str) -> Path:
    key = hashlib.sha256(url.encode("utf-8")).hexdigest()[:24]
    return settings.cache_dir / "calendars" / f"{key}.ics"


def _cached_copy(settings: Settings, url: str) -> bytes | None:
    try:
        return _cache_path(settings, url).read_bytes()
    except OSError:
        return None


def _fetch_calendar(settings: Settings, url: str) -> bytes:
    """GET a remote calendar with the feed fetcher; keep a copy for conditional GETs (ETag, 304)."""
    from cepletter.sources.fetch import fetch

    body_path = _cache_path(settings, url)
    meta_path = body_path.with_suffix(".json")
    meta: dict[str, str | None] = {}
    if body_path.is_file() and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
    response = fetch(
        url,
        timeout=settings.fetch.timeout,
        max_bytes=settings.fetch.max_bytes,
        max_redirects=settings.fetch.max_redirects,
        etag=meta.get("etag"),
        last_modified=meta.get("last_modified"),
    )
    if response.status == 304:
        try:
            return body_path.read_bytes()
        except OSError:
            # The copy vanished between the check and now: ask again without conditions.
            response = fetch(url, timeout=settings.fetch.timeout, max_bytes=settings.fetch.max_bytes,
                             max_redirects=settings.fetch.max_redirects)
    if _looks_like_calendar(response.body):
        try:
            atomic_write_bytes(body_path, response.body, fsync=False)
            atomic_write_text(meta_path, json.dumps(
                {"url": url, "etag": response.etag, "last_modified": response.last_modified}), fsync=False)
        except OSError:
            pass  # the cache only saves a download; failing to write it is not an error
    return response.body


def events_between(data: bytes, start: date, end: date, zone: ZoneInfo, source_name: str, *,
                   warn: Callable[[str], None] | None = None) -> list[Event]:
    """Events of one calendar (raw .ics bytes) overlapping [start, end), times in ``zone``.

    Bounded (see `EXPANSION_STEPS`, `MAX_OCCURRENCES`): an event that repeats
    too often is left out or cut short, and ``warn`` hears about it.
    """
    import icalendar
    import recurring_ical_events

    if not data.strip():
        raise SourceError(f"source {source_name!r}: the calendar is empty", "Export the calendar again as .ics.")
    if not _looks_like_calendar(data):
        raise SourceError(
            f"source {source_name!r}: not an iCalendar file (it does not start with BEGIN:VCALENDAR)",
            "Use the .ics export or subscription address of the calendar.",
        )
    try:
        cal = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise SourceError(f"source {source_name!r}: not a valid iCalendar file: {exc}",
                          "Export the calendar again as .ics.") from None
    window_start = datetime.combine(start, time.min, zone)
    window_end = datetime.combine(end, time.min, zone)
    _drop_costly_series(cal, window_end, zone, source_name, warn)
    try:
        # skip_bad_series: one malformed recurring event must not hide all the others.
        query = recurring_ical_events.of(cal, skip_bad_series=True)
        occurrences = list(query.between(window_start, window_end))
    except Exception as exc:  # the library raises several kinds for broken rules
        raise SourceError(f"source {source_name!r}: cannot expand the calendar's events: {exc}",
                          "Check the recurring events in the calendar.") from None
    events: list[Event] = []
    seen: set[str] = set()
    per_series: dict[str, list[Event]] = {}
    for component in occurrences:
        event = _event_from(component, zone)
        if event is None or (event.id is not None and event.id in seen):
            continue
        if event.id is not None:
            seen.add(event.id)
        # Occurrences of one event share its UID (or, without one, its title).
        series_key = _clean(component.get("UID")) or f"title {event.title}"
        per_series.setdefault(series_key, []).append(event)
        events.append(event)
    dropped: set[int] = set()
    for series in per_series.values():
        if len(series) > MAX_OCCURRENCES:
            series.sort(key=lambda e: _sort_key(e.start, zone))
            dropped.update(id(e) for e in series[MAX_OCCURRENCES:])
            if warn is not None:
                warn(f"source {source_name!r}: event {series[0].title!r} occurs {len(series):,} times from "
                     f"{start.isoformat()} to {end.isoformat()}; only the first {MAX_OCCURRENCES} are in the issue")
    return [e for e in events if id(e) not in dropped] if dropped else events


def _drop_costly_series(cal: Any, window_end: datetime, zone: ZoneInfo, source_name: str,
                        warn: Callable[[str], None] | None) -> None:
    """Take out of ``cal`` every recurring event whose expansion would cost too many rule steps.

    Each event's cost is counted before anything is expanded; once the
    calendar's `EXPANSION_STEPS` are spent, the events after are left out too.
    """
    budget = EXPANSION_STEPS
    costly: set[str] = set()
    for component in cal.walk("VEVENT"):
        steps = _rule_steps(component, window_end, zone)
        if steps == 0:
            continue
        uid = _clean(component.get("UID")) or f"#{id(component)}"
        if steps <= budget:
            budget -= steps
            continue
        costly.add(uid)
        if warn is not None:
            title = _clean(component.get("SUMMARY")) or "Untitled event"
            warn(f"source {source_name!r}: event {title!r} repeats too often to list (about {steps:,} "
                 f"times from its first day to the end of the issue's window); left out. "
                 "Give it a longer interval or an end (UNTIL or COUNT) in the calendar")
    if costly:
        cal.subcomponents[:] = [
            c for c in cal.subcomponents
            if not (c.name == "VEVENT" and (_clean(c.get("UID")) or f"#{id(c)}") in costly)
        ]


def _rule_steps(component: Any, window_end: datetime, zone: ZoneInfo) -> int:
    """About how many steps expanding the event's RRULEs to ``window_end`` takes (0: not recurring)."""
    rules = component.get("RRULE")
    dtstart = component.get("DTSTART")
    if rules is None or dtstart is None:
        return 0
    first = _aware(dtstart.dt, zone)
    total = 0
    for rule in rules if isinstance(rules, list) else [rules]:
        try:
            freq = str(rule.get("FREQ", ["DAILY"])[0]).upper()
            interval = max(1, int(rule.get("INTERVAL", [1])[0]))
            until = rule.get("UNTIL")
            last = min(window_end, _aware(until[0], zone)) if until else window_end
            span = max(0.0, (last - first).total_seconds())
            steps = int(span // (_SECONDS.get(freq, 86_400) * interval)) + 1
            for part in _EXPANDING:
                steps *= max(1, len(rule.get(part, [])))
            count = rule.get("COUNT")
            if count and not any(part in rule for part in _EXPANDING):
                steps = min(steps, int(count[0]))
        except (TypeError, ValueError, IndexError, OverflowError):
            continue  # the expansion skips a rule it cannot read (skip_bad_series)
        total += steps
    return total


def _aware(value: date | datetime, zone: ZoneInfo) -> datetime:
    if not isinstance(value, datetime):
        return datetime.combine(value, time.min, zone)
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def _event_from(component: Any, zone: ZoneInfo) -> Event | None:
    status = str(component.get("STATUS", "")).strip().upper()
    if status == "CANCELLED":
        return None
    dtstart = component.get("DTSTART")
    if dtstart is None:
        return None
    begin = _in_zone(dtstart.dt, zone)
    finish = _end_of(component, begin, zone)
    all_day = not isinstance(begin, datetime)
    if all_day:
        # iCalendar's DTEND of an all-day event is the day AFTER the last day
        # (exclusive); people and the issue file want the inclusive last day.
        if isinstance(finish, date) and not isinstance(finish, datetime):
            finish = finish - timedelta(days=1)
        if finish is not None and finish <= begin:
            finish = None
    elif finish is not None and finish <= begin:
        finish = None
    title = _clean(component.get("SUMMARY")) or "Untitled event"
    location = _clean(component.get("LOCATION")) or None
    link = _clean(component.get("URL")) or None
    if link is not None and not _HTTP.match(link):
        link = None
    uid = _clean(component.get("UID"))
    # A moved instance keeps the identity of the slot it replaces (its RECURRENCE-ID).
    recurrence = component.get("RECURRENCE-ID")
    slot = _in_zone(recurrence.dt, zone) if recurrence is not None else begin
    return Event(
        title=title,
        start=begin,
        end=finish,
        all_day=all_day,
        location=location,
        link=link,
        id=f"{uid}/{_stamp(slot)}" if uid else None,
    )


def _end_of(component: Any, begin: date | datetime, zone: ZoneInfo) -> date | datetime | None:
    dtend = component.get("DTEND")
    if dtend is not None:
        return _in_zone(dtend.dt, zone)
    duration = component.get("DURATION")
    if duration is not None and isinstance(duration.dt, timedelta):
        return begin + duration.dt
    return None


def _looks_like_calendar(data: bytes) -> bool:
    return data.lstrip(b"\xef\xbb\xbf \t\r\n").upper().startswith(b"BEGIN:VCALENDAR")


def _in_zone(value: date | datetime, zone: ZoneInfo) -> date | datetime:
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is None:
        # A "floating" time means local time wherever you are: the organisation's zone.
        return value.replace(tzinfo=zone)
    return value.astimezone(zone)


def _clean(value: Any) -> str:
    """A calendar's text as one line, without bidi controls: iCalendar TEXT is text, not HTML."""
    from cepletter.sources.sanitize import plain_text

    if value is None:
        return ""
    return plain_text(str(value), html=False)


def _stamp(value: date | datetime) -> str:
    return value.isoformat()


def _sort_key(value: date | datetime, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    return datetime.combine(value, time.min, zone)
