"""The units of content: a feed or file Item, and a calendar Event."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass
class Item:
    """One candidate news item, as read from a source (already sanitised)."""

    id: str
    title: str
    link: str
    date: datetime | None
    source: str
    summary: str = ""  # sanitised HTML
    categories: list[str] = field(default_factory=list)
    image: str | None = None
    author: str | None = None

    @property
    def category(self) -> str | None:
        return self.categories[0] if self.categories else None


@dataclass
class Event:
    """One upcoming event for the issue's events section.

    ``end`` has one meaning everywhere: for an all-day event it is the last
    day of the event, inclusive (a conference on 11, 12 and 13 December ends on
    the 13th, although iCalendar's DTEND says the 14th; `sources.events` makes
    that correction once, when reading the calendar); for a timed event it is
    the moment it ends. None: no end, or the same day.
    """

    title: str
    start: date | datetime
    end: date | datetime | None = None
    all_day: bool = False
    location: str | None = None
    link: str | None = None
    id: str | None = None
