"""A subscriber as the message builder sees it: one row of the list."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str = ""
    fields: dict[str, str] = field(default_factory=dict)  # every column of the subscriber row
    line: int | None = None  # line in subscribers.csv, for messages
