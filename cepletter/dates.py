"""Dates as cepletter reads and writes them: ISO 8601 text, and dates in words.

One owner for both, so a feed, a Markdown note, the issue file and the
command line agree on what "2025-12-17" or "2025-12-17T09:30Z" means, and the
email, the archive and the default titles name months and days the same way,
in the edition's language: CLDR's formats and names, through Babel.

Babel is imported inside the functions that write dates in words: the feed
readers import this module for parsing only.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING

from cepletter import i18n

if TYPE_CHECKING:
    from babel import Locale


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


# ---------------------------------------------------------------- in words

def _locale(language: str) -> Locale:
    return i18n.locale(language)


def long_date(day: date, language: str = "en") -> str:
    """18 December 2025, 18 décembre 2025, 18. Dezember 2025 (CLDR's long date)."""
    from babel.dates import format_date

    return str(format_date(day, "long", locale=_locale(language)))


def weekday_date(day: date, language: str = "en") -> str:
    """Thursday, 18 December 2025; jeudi 18 décembre 2025 (CLDR's full date)."""
    from babel.dates import format_date

    return str(format_date(day, "full", locale=_locale(language)))


def month_year(year: int, month: int, language: str = "en") -> str:
    """December 2025, décembre 2025, diciembre de 2025: a month as a title names it."""
    from babel.dates import format_skeleton

    return str(format_skeleton("yMMMM", date(year, month, 1), locale=_locale(language)))


def short_month(month: int, language: str = "en") -> str:
    """DEC, DÉC, DEZ: the month on an event's date badge (CLDR's abbreviation, capitals, no dot)."""
    from babel.dates import format_date

    name = str(format_date(date(2000, month, 1), "LLL", locale=_locale(language)))
    return name.rstrip(".").upper()


def day_number(day: date, language: str = "en") -> str:
    """The day of the month in the language's digits, for the date badge."""
    from babel.dates import format_date

    return str(format_date(day, "d", locale=_locale(language)))


def short_time(moment: datetime | time, language: str = "en") -> str:
    """10:00 (or 10:00 AM where the language writes it so)."""
    from babel.dates import format_time

    return str(format_time(moment, "short", locale=_locale(language)))


def date_and_time(day_text: str, time_text: str, language: str = "en") -> str:
    """A written date and time joined as the language joins them ("{date}, {time}")."""
    glue = str(_locale(language).datetime_formats.get("medium") or "{1}, {0}")
    return glue.replace("{1}", day_text).replace("{0}", time_text)


def time_range(start: datetime, end: datetime, language: str = "en") -> str:
    """10:00–12:00: two times of one day, in CLDR's interval format."""
    from babel.dates import format_time

    loc = _locale(language)
    if "h" in str(loc.time_formats["short"].pattern):  # a 12-hour clock: 10:00 AM
        skeleton = "hm"
        field = "a" if (start.hour < 12) != (end.hour < 12) else "h" if start.hour != end.hour else "m"
    else:
        skeleton = "Hm"
        field = "H" if start.hour != end.hour else "m"
    halves = _interval(loc, (skeleton,), field)
    if halves is None:
        return between(short_time(start, language), short_time(end, language), language)
    return str(format_time(start, halves[0], locale=loc)) + str(format_time(end, halves[1], locale=loc))


def day_range(first: date, last: date, language: str = "en") -> str:
    """20–22 January 2026, 30 March – 2 April 2026: days of an event, as CLDR writes a date interval."""
    from babel.dates import format_date

    if last <= first:
        return long_date(first, language)
    loc = _locale(language)
    field = "y" if first.year != last.year else "M" if first.month != last.month else "d"
    halves = _interval(loc, ("yMMMMd", "yMMMd"), field)
    if halves is None:
        return between(long_date(first, language), long_date(last, language), language)
    return str(format_date(first, halves[0], locale=loc)) + str(format_date(last, halves[1], locale=loc))


def between(first: str, last: str, language: str = "en") -> str:
    """Two written dates or date-times as a range ("{first} – {last}")."""
    pattern = str(_locale(language).interval_formats.get(None) or "{0} – {1}")
    return pattern.replace("{0}", first).replace("{1}", last)


# Where CLDR has the interval only with abbreviated months (MMM), the month is
# written out in full (MMMM), as ICU does for a skeleton asking for it.
_ABBREVIATED_MONTH = re.compile(r"(?<![ML])MMM(?![ML])")
_PADDED_DAY = re.compile(r"(?<!d)dd(?!d)")


def _interval(loc: Locale, skeletons: tuple[str, ...], field: str) -> tuple[str, str] | None:
    for skeleton in skeletons:
        formats = loc.interval_formats.get(skeleton)
        halves = formats.get(field) if formats else None
        if halves and len(halves) == 2:
            start, end = (str(half) for half in halves)
            if "MMMM" not in skeleton:
                start, end = _ABBREVIATED_MONTH.sub("MMMM", start), _ABBREVIATED_MONTH.sub("MMMM", end)
            if "dd" not in str(loc.date_formats["long"].pattern):
                # A day the long date writes as 2 is not written 02 in a range of it.
                start, end = _PADDED_DAY.sub("d", start), _PADDED_DAY.sub("d", end)
            return start, end
    return None
