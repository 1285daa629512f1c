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
    """One upcoming event for the issue's events section."""

    title: str
    start: date | datetime
    end: date | datetime | None = None
    all_day: bool = False
    location: str | None = None
    link: str | None = None
    id: str | None = None
