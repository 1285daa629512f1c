"""Dates as cepletter reads and writes them: ISO 8601 text, and dates in words.

One owner for both, so a feed, a Markdown note, the issue file and the
command line agree on what "2025-12-17" or "2025-12-17T09:30Z" means, and the
email, the archive and the default titles name months the same way.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def parse_iso(text: str) -> date | datetime:
    """``2025-12-17`` → a date; ``2025-12-17 09:30`` or ``…T09:30:00Z`` → a datetime.

    A trailing ``Z`` means UTC (Python 3.11 reads it too, but only there).
    Raises ValueError for anything else, an impossible date included.
    """
    text = text.strip()
    if "T" in text or " " in text:
        if text[-1:] in "Zz":
            text = text[:-1] + "+00:00"
        return datetime.fromisoformat(text)
    return date.fromisoformat(text)


def parse_iso_datetime(text: str) -> datetime:
    """An ISO date or date-time as an aware datetime (a bare date is midnight UTC)."""
    value = parse_iso(text)
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def long_date(day: date) -> str:
    """18 December 2025."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def weekday_date(day: date) -> str:
    """Thursday 18 December 2025."""
    return f"{WEEKDAYS[day.weekday()]} {long_date(day)}"


def month_year(year: int, month: int) -> str:
    """December 2025."""
    return f"{MONTHS[month - 1]} {year}"


def short_month(month: int) -> str:
    """DEC: the month on an event's date badge."""
    return MONTHS[month - 1][:3].upper()
