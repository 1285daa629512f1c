"""A rendered issue: the same for everyone, with a slot where each per-recipient value goes.

The renderer runs Jinja2 and the CSS inliner once per issue, with a unique
placeholder token where each per-recipient value goes. What is left per
recipient is joining pre-split text with escaped values: cheap, and the
reason sending never re-inlines. Which values a recipient gets is the message
stage's business (`cepletter.message.personal`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

Escaper = Callable[[str], str]


@dataclass(frozen=True)
class SlotTemplate:
    """Static text split around placeholder slots, not yet filled: parts[0] slot[0] parts[1] ... parts[n]."""

    parts: tuple[str, ...]
    slots: tuple[tuple[str, Escaper], ...] = ()  # (value key, escaping for that spot)

    def fill(self, values: Mapping[str, str]) -> str:
        if not self.slots:
            return self.parts[0]
        out = [self.parts[0]]
        for (key, escape), part in zip(self.slots, self.parts[1:], strict=True):
            out.append(escape(values.get(key, "")))
            out.append(part)
        return "".join(out)

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(key for key, _ in self.slots)


@dataclass(frozen=True)
class RenderedIssue:
    """What `render_issue` returns: subject, preheader, and the two bodies as slot templates.

    Value keys: "recipient.email", "recipient.name", "recipient.<column>",
    "unsubscribe_url", and derived keys such as a name with a fallback.
    """

    issue_id: str
    subject: str
    preheader: str
    html: SlotTemplate
    text: SlotTemplate
    language: str = ""  # the edition's language tag ("" when not known)
    untranslated: tuple[str, ...] = ()  # fixed texts the language's catalogue lacked: left in English

    @property
    def keys(self) -> frozenset[str]:
        """Every value key either body has a slot for."""
        return self.html.keys | self.text.keys

    def fill(self, values: Mapping[str, str]) -> tuple[str, str]:
        """The HTML and text with these values in their slots."""
        return self.html.fill(values), self.text.fill(values)
