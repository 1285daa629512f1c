"""A subscriber as the renderer and the message builder see it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from urllib.parse import quote


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str = ""
    fields: dict[str, str] = field(default_factory=dict)  # every column of the subscriber row
    line: int | None = None  # line in subscribers.csv, for messages


def unsubscribe_token(list_name: str, email: str) -> str:
    """A stable per-subscriber token (the `{token}` in unsubscribe_url).

    A subscriber row with a `token` column uses that value instead.
    """
    digest = hashlib.sha256(f"{list_name}\0{email.lower()}".encode()).hexdigest()
    return digest[:24]


def unsubscribe_url(template: str | None, list_name: str, recipient: Recipient) -> str:
    """Fill `{email}` and `{token}` of the configured unsubscribe URL for one recipient."""
    if not template:
        return ""
    token = recipient.fields.get("token") or unsubscribe_token(list_name, recipient.email)
    return template.replace("{email}", quote(recipient.email, safe="@")).replace(
        "{token}", quote(token, safe="")
    )
