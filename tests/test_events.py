"""Events from iCalendar sources: time zones, all-day, multi-day, recurring, cancelled."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import ClassVar
from zoneinfo import ZoneInfo

import pytest
from conftest import Invoke

from cepletter.config import Settings, load_settings
from cepletter.errors import SourceError
from cepletter.issue.file import dumps, loads
from cepletter.sources.events import MAX_EVENTS, MAX_OCCURRENCES, add_months, is_ics_source, upcoming_events
from cepletter.sources.items import Event

AMS = ZoneInfo("Europe/Amsterdam")

CALENDAR = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//CEP//Events test//EN
BEGIN:VTIMEZONE
TZID:Eastern Standard Time
BEGIN:STANDARD
DTSTART:16011104T020000
RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11
TZOFFSETFROM:-0400
TZOFFSETTO:-0500
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010311T020000
RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3
TZOFFSETFROM:-0500
TZOFFSETTO:-0400
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VEVENT
UID:webinar-1@cep
DTSTAMP:20251101T000000Z
DTSTART;TZID=Eastern Standard Time:20260115T090000
DTEND;TZID=Eastern Standard Time:20260115T103000
SUMMARY:Webinar: electronic monitoring across the Atlantic
LOCATION:Online
URL:https://www.cep-probation.org/events/webinar/
END:VEVENT
BEGIN:VEVENT
UID:board@cep
DTSTAMP:20251101T000000Z
DTSTART:20260112T130000Z
DURATION:PT2H
SUMMARY:Board meeting
LOCATION:Utrecht
URL:javascript:alert(1)
END:VEVENT
BEGIN:VEVENT
UID:holiday@cep
DTSTAMP:20251101T000000Z
DTSTART;VALUE=DATE:20251225
DTEND;VALUE=DATE:20251226
SUMMARY:Office closed
END:VEVENT
BEGIN:VEVENT
UID:conference@cep
DTSTAMP:20251101T000000Z
DTSTART;VALUE=DATE:20260203
DTEND;VALUE=DATE:20260206
SUMMARY:Conference on probation and mental health
LOCATION:Lisbon, Portugal
END:VEVENT
BEGIN:VEVENT
UID:reading@cep
DTSTAMP:20251101T000000Z
DTSTART;TZID=Europe/Amsterdam:20260105T160000
DTEND;TZID=Europe/Amsterdam:20260105T170000
RRULE:FREQ=WEEKLY;COUNT=6
EXDATE;TZID=Europe/Amsterdam:20260112T160000
SUMMARY:Reading corner
LOCATION:CEP office
END:VEVENT
BEGIN:VEVENT
UID:reading@cep
DTSTAMP:20251101T000000Z
RECURRENCE-ID;TZID=Europe/Amsterdam:20260119T160000
DTSTART;TZID=Europe/Amsterdam:20260119T160000
DTEND;TZID=Europe/Amsterdam:20260119T170000
STATUS:CANCELLED
SUMMARY:Reading corner
END:VEVENT
BEGIN:VEVENT
UID:reading@cep
DTSTAMP:20251101T000000Z
RECURRENCE-ID;TZID=Europe/Amsterdam:20260126T160000
DTSTART;TZID=Europe/Amsterdam:20260127T180000
DTEND;TZID=Europe/Amsterdam:20260127T190000
SUMMARY:Reading corner (moved to Tuesday)
LOCATION:CEP office
END:VEVENT
BEGIN:VEVENT
UID:cancelled@cep
DTSTAMP:20251101T000000Z
DTSTART:20260120T090000Z
DTEND:20260120T100000Z
STATUS:CANCELLED
SUMMARY:Cancelled workshop
END:VEVENT
BEGIN:VEVENT
UID:floating@cep
DTSTAMP:20251101T000000Z
DTSTART:20260130T140000
DTEND:20260130T150000
SUMMARY:  Team
  call
END:VEVENT
BEGIN:VEVENT
UID:past@cep
DTSTAMP:20251101T000000Z
DTSTART;VALUE=DATE:20251101
SUMMARY:Past event
END:VEVENT
BEGIN:VEVENT
UID:far@cep
DTSTAMP:20251101T000000Z
DTSTART:20260301T090000Z
DTEND:20260301T100000Z
SUMMARY:Too far ahead
END:VEVENT
END:VCALENDAR
"""


def workspace(tmp_path: Path, source: str) -> Settings:
    (tmp_path / "cepletter.toml").write_text(
        '[newsletter]\nname = "CEP Newsletter"\nfrom = "CEP <newsletter@example.org>"\n'
        'timezone = "Europe/Amsterdam"\n\n' + source,
        encoding="utf-8",
    )
    return load_settings(tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "events.ics").write_text(CALENDAR.replace("\n", "\r\n"), encoding="utf-8")
    return workspace(tmp_path, '[[sources]]\nname = "events"\npath = "events.ics"\n')


def by_title(events: list[Event]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = {}
    for event in events:
        out.setdefault(event.title, []).append(event)
    return out


def test_window_keeps_only_events_between_start_and_two_months_later(settings: Settings) -> None:
    events = upcoming_events(settings, date(2025, 12, 18))
    titles = [e.title for e in events]
    assert "Past event" not in titles
    assert "Too far ahead" not in titles
    assert titles[0] == "Office closed"
    starts = [e.start if isinstance(e.start, datetime) else datetime.combine(e.start, datetime.min.time(), AMS)
              for e in events]
    assert starts == sorted(starts)


def test_tzid_with_vtimezone_is_converted_to_the_organisation_zone(settings: Settings) -> None:
    (webinar,) = by_title(upcoming_events(settings, date(2025, 12, 18)))[
        "Webinar: electronic monitoring across the Atlantic"]
    assert isinstance(webinar.start, datetime) and isinstance(webinar.end, datetime)
    # 09:00 New York (UTC-5 in January) is 15:00 in Amsterdam (UTC+1).
    assert webinar.start == datetime(2026, 1, 15, 15, 0, tzinfo=AMS)
    assert webinar.start.utcoffset() == timedelta(hours=1)
    assert webinar.end == datetime(2026, 1, 15, 16, 30, tzinfo=AMS)
    assert webinar.location == "Online"
    assert webinar.link == "https://www.cep-probation.org/events/webinar/"
    assert not webinar.all_day


def test_utc_time_with_duration_and_unsafe_link(settings: Settings) -> None:
    (board,) = by_title(upcoming_events(settings, date(2025, 12, 18)))["Board meeting"]
    assert board.start == datetime(2026, 1, 12, 14, 0, tzinfo=AMS)
    assert board.end == datetime(2026, 1, 12, 16, 0, tzinfo=AMS)
    assert board.link is None  # javascript: is never passed on


def test_all_day_single_and_multi_day(settings: Settings) -> None:
    events = by_title(upcoming_events(settings, date(2025, 12, 18)))
    (closed,) = events["Office closed"]
    assert closed.all_day and closed.start == date(2025, 12, 25) and closed.end is None
    (conference,) = events["Conference on probation and mental health"]
    assert conference.all_day
    # DTEND 6 Feb is exclusive in iCalendar: the last day is 5 Feb.
    assert (conference.start, conference.end) == (date(2026, 2, 3), date(2026, 2, 5))
    assert conference.location == "Lisbon, Portugal"


def test_weekly_recurrence_with_exdate_cancelled_and_moved_instances(settings: Settings) -> None:
    events = by_title(upcoming_events(settings, date(2025, 12, 18)))
    weekly = [e.start for e in events["Reading corner"]]
    # COUNT=6 from 5 Jan: 5, 12 (EXDATE), 19 (cancelled), 26 (moved), 2 Feb, 9 Feb.
    assert weekly == [
        datetime(2026, 1, 5, 16, 0, tzinfo=AMS),
        datetime(2026, 2, 2, 16, 0, tzinfo=AMS),
        datetime(2026, 2, 9, 16, 0, tzinfo=AMS),
    ]
    (moved,) = events["Reading corner (moved to Tuesday)"]
    assert moved.start == datetime(2026, 1, 27, 18, 0, tzinfo=AMS)
    assert moved.id == "reading@cep/2026-01-26T16:00:00+01:00"
    ids = [e.id for e in upcoming_events(settings, date(2025, 12, 18))]
    assert len(ids) == len(set(ids)) and all(ids)


def test_cancelled_event_is_dropped(settings: Settings) -> None:
    titles = {e.title for e in upcoming_events(settings, date(2025, 12, 18))}
    assert "Cancelled workshop" not in titles


def test_floating_time_is_local_and_folded_summary_is_cleaned(settings: Settings) -> None:
    (call,) = by_title(upcoming_events(settings, date(2025, 12, 18)))["Team call"]
    assert call.start == datetime(2026, 1, 30, 14, 0, tzinfo=AMS)


def test_event_running_into_the_window_is_kept(settings: Settings) -> None:
    titles = [e.title for e in upcoming_events(settings, date(2026, 2, 4), months=1)]
    assert "Conference on probation and mental health" in titles
    assert "Office closed" not in titles


def test_events_round_trip_through_the_issue_file(settings: Settings) -> None:
    events = upcoming_events(settings, date(2025, 12, 18))
    text = (
        "---\ntitle: T\nsubject: S\npreheader: P\ndate: 2025-12-18\n"
        "sections:\n- heading: News\n  items:\n  - id: a\n    title: A\n    link: https://example.org/a\n"
        "---\n"
    )
    issue = loads(text, "2025-12", "issue.md")
    issue.events = events
    again = loads(dumps(issue), "2025-12", "issue.md")
    assert [(e.title, e.all_day, e.location, e.link) for e in again.events] == [
        (e.title, e.all_day, e.location, e.link) for e in events]
    for before, after in zip(events, again.events, strict=True):
        assert after.start == before.start and after.end == before.end


def test_no_ics_source_gives_no_events(tmp_path: Path) -> None:
    settings = workspace(tmp_path, '[[sources]]\nname = "news"\npath = "news.xml"\n')
    assert upcoming_events(settings, date(2025, 12, 18)) == []


def test_kind_is_inferred_or_given(tmp_path: Path) -> None:
    settings = workspace(
        tmp_path,
        '[[sources]]\nname = "a"\nurl = "https://example.org/cal.ics?x=1"\n'
        '[[sources]]\nname = "b"\npath = "agenda.txt"\nkind = "ics"\n'
        '[[sources]]\nname = "c"\npath = "news.ics"\nkind = "feed"\n',
    )
    assert [is_ics_source(s) for s in settings.sources] == [True, True, False]


def test_missing_file_is_a_source_error_naming_the_source(tmp_path: Path) -> None:
    settings = workspace(tmp_path, '[[sources]]\nname = "agenda"\npath = "missing.ics"\n')
    with pytest.raises(SourceError, match=r"source 'agenda': calendar file .*missing.ics not found"):
        upcoming_events(settings, date(2025, 12, 18))


@pytest.mark.parametrize("content", [b"", b"<rss version='2.0'></rss>", b"BEGIN:VCALENDAR\r\nBROKEN"])
def test_not_a_calendar_is_a_source_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "agenda.ics").write_bytes(content)
    settings = workspace(tmp_path, '[[sources]]\nname = "agenda"\npath = "agenda.ics"\n')
    with pytest.raises(SourceError, match="source 'agenda'"):
        upcoming_events(settings, date(2025, 12, 18))


def test_add_months_clamps_the_day() -> None:
    assert add_months(date(2025, 12, 31), 2) == date(2026, 2, 28)
    assert add_months(date(2025, 11, 18), 2) == date(2026, 1, 18)


class _Handler(http.server.BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        self.requests.append((self.path, self.headers.get("If-None-Match")))
        if self.path != "/events.ics":
            self.send_error(404)
            return
        if self.headers.get("If-None-Match") == '"v1"':
            self.send_response(304)
            self.end_headers()
            return
        body = CALENDAR.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/calendar; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", '"v1"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_remote_calendar_over_http_is_cached_with_etag(tmp_path: Path, server: str) -> None:
    _Handler.requests.clear()
    settings = workspace(tmp_path, f'[[sources]]\nname = "agenda"\nurl = "{server}/events.ics"\n')
    first = upcoming_events(settings, date(2025, 12, 18))
    titles = {e.title for e in first}
    assert "Board meeting" in titles and "Cancelled workshop" not in titles
    second = upcoming_events(settings, date(2025, 12, 18))
    assert second == first
    # The second run asked with the ETag and got 304: the calendar came from the cache.
    assert _Handler.requests == [("/events.ics", None), ("/events.ics", '"v1"')]


def test_remote_calendar_not_found_is_a_source_error(tmp_path: Path, server: str) -> None:
    settings = workspace(tmp_path, f'[[sources]]\nname = "agenda"\nurl = "{server}/nothing.ics"\n')
    with pytest.raises(SourceError, match=r"source 'agenda': .*nothing.ics: HTTP 404"):
        upcoming_events(settings, date(2025, 12, 18))


def test_draft_writes_the_calendar_into_the_issue_file(tmp_path: Path, run: Invoke) -> None:
    ws = tmp_path / "ws"
    made = run("init", str(ws))
    assert made.exit_code == 0, made.stderr
    soon = date.today() + timedelta(days=10)
    later = date.today() + timedelta(days=20)
    far = date.today() + timedelta(days=100)
    (ws / "agenda.ics").write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//CEP//test//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:a@cep\r\nDTSTART;VALUE=DATE:{soon:%Y%m%d}\r\n"
        f"DTEND;VALUE=DATE:{soon + timedelta(days=2):%Y%m%d}\r\nSUMMARY:Annual conference\r\n"
        "LOCATION:Lisbon\r\nURL:https://www.cep-probation.org/conference/\r\nEND:VEVENT\r\n"
        f"BEGIN:VEVENT\r\nUID:b@cep\r\nDTSTART:{later:%Y%m%d}T130000Z\r\nDTEND:{later:%Y%m%d}T140000Z\r\n"
        "SUMMARY:Webinar\r\nEND:VEVENT\r\n"
        f"BEGIN:VEVENT\r\nUID:c@cep\r\nDTSTART;VALUE=DATE:{far:%Y%m%d}\r\nSUMMARY:Far away\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n",
        encoding="utf-8",
    )
    with (ws / "cepletter.toml").open("a", encoding="utf-8") as fh:
        fh.write('\n[[sources]]\nname = "agenda"\npath = "agenda.ics"\n')
    result = run("-C", str(ws), "draft", "--all", "--issue", "2099-01")
    assert result.exit_code == 0, result.stderr
    assert ", 2 events." in result.stderr
    text = (ws / "issues" / "2099-01" / "issue.md").read_text(encoding="utf-8")
    assert "events:" in text and "Annual conference" in text and "Far away" not in text
    issue = loads(text, "2099-01", "issue.md")
    conference, webinar = issue.events
    assert conference.all_day and (conference.start, conference.end) == (soon, soon + timedelta(days=1))
    assert conference.location == "Lisbon" and conference.link == "https://www.cep-probation.org/conference/"
    assert isinstance(webinar.start, datetime) and not webinar.all_day
    assert webinar.start.astimezone(ZoneInfo("UTC")).hour == 13


def test_remote_calendar_that_is_down_uses_the_last_copy_with_a_warning(tmp_path: Path) -> None:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/events.ics"
    settings = workspace(tmp_path, f'[[sources]]\nname = "agenda"\nurl = "{url}"\n')
    try:
        first = upcoming_events(settings, date(2025, 12, 18))
    finally:
        httpd.shutdown()
        httpd.server_close()
    warnings: list[str] = []
    again = upcoming_events(settings, date(2025, 12, 18), warn=warnings.append)
    assert again == first
    assert len(warnings) == 1
    assert warnings[0].startswith(f"source 'agenda': {url}:") and "using the copy fetched before" in warnings[0]
    # Without a copy the same failure is an error naming the source.
    (tmp_path / "other").mkdir()
    fresh = workspace(tmp_path / "other", f'[[sources]]\nname = "agenda"\nurl = "{url}"\n')
    with pytest.raises(SourceError, match=r"^source 'agenda': http://127\.0\.0\.1"):
        upcoming_events(fresh, date(2025, 12, 18))


def test_webcal_links_are_fetched_over_https(tmp_path: Path) -> None:
    # Nothing listens on port 9 of this machine: the error shows the address that was tried.
    settings = workspace(tmp_path, '[[sources]]\nname = "agenda"\nurl = "webcal://127.0.0.1:9/cal.ics"\n')
    with pytest.raises(SourceError, match=r"^source 'agenda': https://127\.0\.0\.1:9/cal\.ics: "):
        upcoming_events(settings, date(2025, 12, 18))


# ---------------------------------------------------------------- bounded expansion

def _calendar(*events: str) -> str:
    body = "".join(f"BEGIN:VEVENT\r\n{e.strip().replace(chr(10), chr(13) + chr(10))}\r\nEND:VEVENT\r\n" for e in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//CEP//test//EN\r\n{body}END:VCALENDAR\r\n"


EVERY_SECOND = """\
UID:spam-seconds@cep
DTSTART:20241201T090000Z
DTEND:20241201T090001Z
RRULE:FREQ=SECONDLY
SUMMARY:Every second
"""
EVERY_MINUTE_FROM_TODAY = """\
UID:spam-minutes@cep
DTSTART:{day:%Y%m%d}T090000Z
DTEND:{day:%Y%m%d}T090030Z
RRULE:FREQ=MINUTELY
SUMMARY:Every minute
"""
WEEKLY = """\
UID:weekly@cep
DTSTART:{day:%Y%m%d}T100000Z
DTEND:{day:%Y%m%d}T110000Z
RRULE:FREQ=WEEKLY
SUMMARY:Weekly team call
"""


def _with_calendar(tmp_path: Path, text: str) -> Settings:
    (tmp_path / "agenda.ics").write_text(text, encoding="utf-8")
    return workspace(tmp_path, '[[sources]]\nname = "agenda"\npath = "agenda.ics"\n')


def test_an_event_every_second_for_ever_is_left_out_with_a_warning(tmp_path: Path) -> None:
    day = date(2025, 12, 18)
    settings = _with_calendar(tmp_path, _calendar(EVERY_SECOND, WEEKLY.format(day=day)))
    warnings: list[str] = []
    events = upcoming_events(settings, day, warn=warnings.append)
    assert [e.title for e in events] == ["Weekly team call"] * 9
    assert len(warnings) == 1
    assert warnings[0].startswith("source 'agenda': event 'Every second' repeats too often to list (about ")
    assert "left out" in warnings[0] and "UNTIL or COUNT" in warnings[0]


def test_an_event_with_many_occurrences_in_the_window_is_cut_short(tmp_path: Path) -> None:
    hourly = "UID:hourly@cep\nDTSTART:20251220T080000Z\nDURATION:PT30M\nRRULE:FREQ=HOURLY;COUNT=500\nSUMMARY:Drop-in"
    settings = _with_calendar(tmp_path, _calendar(hourly, WEEKLY.format(day=date(2025, 12, 18))))
    warnings: list[str] = []
    events = by_title(upcoming_events(settings, date(2025, 12, 18), warn=warnings.append))
    assert len(events["Drop-in"]) == MAX_OCCURRENCES == 62
    assert events["Drop-in"][0].start == datetime(2025, 12, 20, 9, 0, tzinfo=AMS)  # the first ones are kept
    assert len(events["Weekly team call"]) == 9
    assert warnings == [f"source 'agenda': event 'Drop-in' occurs 500 times from 2025-12-18 to 2026-02-18; "
                        f"only the first {MAX_OCCURRENCES} are in the issue"]


def test_the_issue_lists_at_most_max_events(tmp_path: Path) -> None:
    daily = [f"UID:d{n}@cep\nDTSTART;VALUE=DATE:20251218\nRRULE:FREQ=DAILY\nSUMMARY:Daily {n}" for n in range(4)]
    settings = _with_calendar(tmp_path, _calendar(*daily))
    warnings: list[str] = []
    events = upcoming_events(settings, date(2025, 12, 18), warn=warnings.append)
    assert len(events) == MAX_EVENTS == 200
    assert events[0].start == date(2025, 12, 18) and events[-1].start == date(2026, 2, 5)  # the earliest kept
    assert warnings == ["the calendars have 248 events from 2025-12-18 to 2026-02-18; only the first 200 are in the issue"]


def test_bidi_controls_are_removed_from_event_text_and_markup_stays_text(tmp_path: Path) -> None:
    event = ("UID:bidi@cep\nDTSTART:20260110T100000Z\nSUMMARY:Invoice \u202efdp.exe for Vec<T> & co\n"
             "LOCATION:Room \u2066B\u2069 12")
    settings = _with_calendar(tmp_path, _calendar(event))
    (only,) = upcoming_events(settings, date(2025, 12, 18))
    assert only.title == "Invoice fdp.exe for Vec<T> & co"
    assert only.location == "Room B 12"


def test_draft_with_a_calendar_that_repeats_every_minute_stays_small(tmp_path: Path, run: Invoke) -> None:
    ws = tmp_path / "ws"
    assert run("init", str(ws)).exit_code == 0
    from cepletter.issue.draft import today as issue_day

    today = issue_day(load_settings(ws))  # the day draft gives the issue, in the newsletter's time zone
    (ws / "agenda.ics").write_text(_calendar(
        EVERY_SECOND, EVERY_MINUTE_FROM_TODAY.format(day=today), WEEKLY.format(day=today + timedelta(days=1)),
        f"UID:t@cep\nDTSTART:{today + timedelta(days=3):%Y%m%d}T120000Z\nSUMMARY:Webinar \u202eexe.pdf",
    ), encoding="utf-8")
    with (ws / "cepletter.toml").open("a", encoding="utf-8") as fh:
        fh.write('\n[[sources]]\nname = "agenda"\npath = "agenda.ics"\n')
    result = run("-C", str(ws), "draft", "--all", "--issue", "2099-01")
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert [w.split(" repeats too often")[0] for w in warnings] == [
        "warning: source 'agenda': event 'Every second'", "warning: source 'agenda': event 'Every minute'"]
    issue_file = ws / "issues" / "2099-01" / "issue.md"
    assert issue_file.stat().st_size < 30_000  # was 11 MB with 88,000 events
    issue = loads(issue_file.read_text(encoding="utf-8"), "2099-01", "issue.md")
    titles = [e.title for e in issue.events]
    weeks = len(range(1, (add_months(today, 2) - today).days, 7))  # from tomorrow, weekly, in the window
    assert "Webinar exe.pdf" in titles and titles.count("Weekly team call") == weeks
    assert "\u202e" not in issue_file.read_text(encoding="utf-8")
    shown = run("-C", str(ws), "preview", "2099-01")
    assert shown.exit_code == 0, shown.stderr
