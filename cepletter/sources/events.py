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
            events.extend(events_between(data, start, end, zone, source.name))
    events.sort(key=lambda e: (_sort_key(e.start, zone), e.title))
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


def events_between(data: bytes, start: date, end: date, zone: ZoneInfo, source_name: str) -> list[Event]:
    """Events of one calendar (raw .ics bytes) overlapping [start, end), times in ``zone``."""
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
    try:
        # skip_bad_series: one malformed recurring event must not hide all the others.
        query = recurring_ical_events.of(cal, skip_bad_series=True)
        occurrences = list(query.between(window_start, window_end))
    except Exception as exc:  # the library raises several kinds for broken rules
        raise SourceError(f"source {source_name!r}: cannot expand the calendar's events: {exc}",
                          "Check the recurring events in the calendar.") from None
    events: list[Event] = []
    seen: set[str] = set()
    for component in occurrences:
        event = _event_from(component, zone)
        if event is None or (event.id is not None and event.id in seen):
            continue
        if event.id is not None:
            seen.add(event.id)
        events.append(event)
    return events


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
    if value is None:
        return ""
    return " ".join(str(value).split())


def _stamp(value: date | datetime) -> str:
    return value.isoformat()


def _sort_key(value: date | datetime, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    return datetime.combine(value, time.min, zone)
