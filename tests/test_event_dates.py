"""An event's dates across every stage: .ics file → draft → issue.md → preview --text → the email.

The meaning of ``Event.end`` sits at the seam between reading the calendar
and printing dates; each side once corrected iCalendar's exclusive end on its
own, and a three-day conference showed as two days. This goes through the
real commands, so neither side can drift alone.
"""

from __future__ import annotations

from pathlib import Path

from conftest import Invoke

CALENDAR = """\
BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//CEP//Event dates//EN
BEGIN:VEVENT
UID:conference@cep
DTSTAMP:20261101T000000Z
DTSTART;VALUE=DATE:20261211
DTEND;VALUE=DATE:20261214
SUMMARY:Annual conference
LOCATION:Lisbon
END:VEVENT
BEGIN:VEVENT
UID:night@cep
DTSTAMP:20261101T000000Z
DTSTART;TZID=Europe/Amsterdam:20261218T220000
DTEND;TZID=Europe/Amsterdam:20261219T020000
SUMMARY:Night shift open house
LOCATION:Utrecht
END:VEVENT
BEGIN:VEVENT
UID:reading@cep
DTSTAMP:20261101T000000Z
DTSTART;TZID=Europe/Amsterdam:20261202T150000
DTEND;TZID=Europe/Amsterdam:20261202T160000
RRULE:FREQ=WEEKLY;COUNT=4
EXDATE;TZID=Europe/Amsterdam:20261209T150000
SUMMARY:Reading corner
END:VEVENT
END:VCALENDAR
"""


def test_event_dates_from_the_calendar_to_the_email(tmp_path: Path, run: Invoke) -> None:
    ws = tmp_path / "ws"
    assert run("init", str(ws)).exit_code == 0
    (ws / "events.ics").write_text(CALENDAR.replace("\n", "\r\n"), encoding="utf-8")
    with (ws / "cepletter.toml").open("a", encoding="utf-8") as toml:
        toml.write('\n[[sources]]\nname = "events"\npath = "events.ics"\n')

    drafted = run("-C", str(ws), "draft", "--issue", "2026-12", "--date", "2026-12-01", "--pick", "1")
    assert drafted.exit_code == 0, drafted.stderr
    assert "5 events" in drafted.stderr  # the conference, the night, three of the four reading corners
    issue_md = (ws / "issues" / "2026-12" / "issue.md").read_text(encoding="utf-8")
    # issue.md holds the last day of the conference, as people read it, not iCalendar's day after.
    conference = issue_md[issue_md.index("title: Annual conference"):]
    assert "start: 2026-12-11" in conference and "end: 2026-12-13" in conference.split("title:")[1]

    preview = run("-C", str(ws), "preview", "2026-12", "--text")
    assert preview.exit_code == 0, preview.stderr
    text = preview.stdout
    assert "11–13 December 2026 · Lisbon" in text
    # CLDR's English (Europe): a comma after the day's name.
    assert "Friday, 18 December 2026, 22:00 – 19 December 2026, 02:00 · Utrecht" in text
    corners = [line for line in text.splitlines() if "Reading corner" in line or "15:00–16:00" in line]
    assert [line for line in corners if "15:00–16:00" in line] == [
        "Wednesday, 2 December 2026, 15:00–16:00",
        "Wednesday, 16 December 2026, 15:00–16:00",
        "Wednesday, 23 December 2026, 15:00–16:00",
    ]
    assert "Wednesday, 9 December" not in text  # the EXDATE
