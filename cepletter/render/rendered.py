"""A rendered issue, ready to be personalised for each recipient.

The renderer runs Jinja2 and the CSS inliner once per issue, with a unique
placeholder token where each per-recipient value goes. What is left per
recipient is joining pre-split text with escaped values: cheap, and the
reason sending never re-inlines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cepletter.message.recipient import Recipient

Escaper = Callable[[str], str]


@dataclass(frozen=True)
class FilledTemplate:
    """Static text split around placeholder slots: parts[0] slot[0] parts[1] ... parts[n]."""

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
    """What `render_issue` returns: subject, preheader, and the two bodies as templates.

    Value keys: "recipient.email", "recipient.name", "recipient.<column>",
    "unsubscribe_url".
    """

    issue_id: str
    subject: str
    preheader: str
    html: FilledTemplate
    text: FilledTemplate
    values_for: Callable[[Recipient], dict[str, str]] = field(repr=False, compare=False)
    web_values: Mapping[str, str] = field(default_factory=dict)

    def fill(self, recipient: Recipient) -> tuple[str, str]:
        """The HTML and text exactly as this recipient gets them."""
        values = self.values_for(recipient)
        return self.html.fill(values), self.text.fill(values)

    def web(self) -> tuple[str, str]:
        """HTML and text with no personal data (web archive, exports, approvals)."""
        return self.html.fill(self.web_values), self.text.fill(self.web_values)
