"""Per-recipient values: what each subscriber's copy of the rendered issue is filled with.

The renderer leaves a slot wherever a template prints ``recipient.*`` or the
unsubscribe link; this module owns the rules that give those slots their
values: the subscriber's columns, the per-subscriber unsubscribe link and its
token, and the version with no personal data (web archive, exports, sign-off).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from cepletter.config import Settings
from cepletter.message.recipient import Recipient
from cepletter.render.context import personal_unsubscribe, static_unsubscribe_url
from cepletter.render.rendered import RenderedIssue, SlotTemplate
from cepletter.render.slots import FALLBACK_SEP, UNSUBSCRIBE_KEY, resolve_value

if TYPE_CHECKING:
    from cepletter.issue.file import Issue
    from cepletter.render.renderer import Timings

Values = Callable[[Recipient], dict[str, str]]


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
    token = recipient_token(list_name, recipient)
    return template.replace("{email}", quote(recipient.email, safe="@")).replace(
        "{token}", quote(token, safe="")
    )


def recipient_token(list_name: str, recipient: Recipient) -> str:
    """The recipient's `{token}`: its `token` column, else `unsubscribe_token`."""
    return recipient.fields.get("token") or unsubscribe_token(list_name, recipient.email)


_LOCAL_SAFE = re.compile(r"[A-Za-z0-9_=-]{1,64}")


def envelope_token(list_name: str, recipient: Recipient) -> str:
    """The `{token}` of ``[delivery] return_path``: the recipient's token when it can stand in an
    address's local part as it is, else `unsubscribe_token`."""
    token = recipient_token(list_name, recipient)
    return token if _LOCAL_SAFE.fullmatch(token) else unsubscribe_token(list_name, recipient.email)


def envelope_sender(template: str, list_name: str, recipient: Recipient) -> str:
    """``[delivery] return_path`` for one recipient: `bounces+{token}@example.org` → `bounces+3f2a...@example.org`."""
    return template.replace("{token}", envelope_token(list_name, recipient))


def generic_unsubscribe_url(settings: Settings) -> str:
    """The unsubscribe link with no personal data (web archive, exports).

    ``https://example.org/unsubscribe?email={email}`` becomes
    ``https://example.org/unsubscribe``: the page then asks for the address.
    """
    nl = settings.newsletter
    template = nl.unsubscribe_url
    if template and "{email}" not in template and "{token}" not in template:
        return template
    if template:
        parts = urlsplit(template)
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                 if "{email}" not in v and "{token}" not in v]
        path = parts.path
        for marker in ("{email}", "{token}"):
            if marker in path:
                path = path[: path.index(marker)]
                path = path[: path.rfind("/") + 1]
        if "{" not in path and "{" not in parts.netloc:
            return urlunsplit(parts._replace(path=path or "/", query=urlencode(query), fragment=""))
    if nl.unsubscribe_mailto:
        return f"mailto:{nl.unsubscribe_mailto}?subject=unsubscribe"
    return nl.web_url or ""


def base_values(settings: Settings, recipient: Recipient) -> dict[str, str]:
    """The plain per-recipient values: email, name, every column, unsubscribe_url."""
    values = {f"recipient.{k}": v for k, v in recipient.fields.items() if isinstance(v, str)}
    values["recipient.email"] = recipient.email
    values["recipient.name"] = recipient.name
    if personal_unsubscribe(settings):
        values[UNSUBSCRIBE_KEY] = unsubscribe_url(
            settings.newsletter.unsubscribe_url, settings.newsletter.name, recipient
        )
    else:
        values[UNSUBSCRIBE_KEY] = static_unsubscribe_url(settings)
    return values


def _values_function(settings: Settings, keys: frozenset[str]) -> Values:
    derived = [k for k in keys if FALLBACK_SEP in k]

    def values_for(recipient: Recipient) -> dict[str, str]:
        values = base_values(settings, recipient)
        for key in derived:
            values[key] = resolve_value(key, values)
        return values

    return values_for


def web_values(settings: Settings, keys: frozenset[str]) -> dict[str, str]:
    """Values for the version with no personal data: empty name and email, generic unsubscribe."""
    values = {k: "" for k in keys if FALLBACK_SEP not in k}
    values[UNSUBSCRIBE_KEY] = generic_unsubscribe_url(settings)
    for key in keys:
        if FALLBACK_SEP in key:
            values[key] = resolve_value(key, values)
    return values


@dataclass(frozen=True)
class PersonalIssue:
    """A rendered issue together with the values each recipient's copy is filled with."""

    rendered: RenderedIssue
    values_for: Values = field(repr=False, compare=False)
    web_values: Mapping[str, str] = field(default_factory=dict)
    # The issue's other language editions (issue.<lang>.md), when this is its main one.
    others: tuple[PersonalIssue, ...] = ()

    @property
    def issue_id(self) -> str:
        return self.rendered.issue_id

    @property
    def language(self) -> str:
        return self.rendered.language

    @property
    def editions(self) -> tuple[PersonalIssue, ...]:
        """Every language edition, this one (the main one) first."""
        return (self, *self.others)

    def edition(self, language: str) -> PersonalIssue | None:
        """The edition in ``language`` (a tag as `editions` name them), if the issue has one."""
        return next((e for e in self.editions if e.language == language), None)

    @property
    def subject(self) -> str:
        return self.rendered.subject

    @property
    def preheader(self) -> str:
        return self.rendered.preheader

    @property
    def html(self) -> SlotTemplate:
        return self.rendered.html

    @property
    def text(self) -> SlotTemplate:
        return self.rendered.text

    def fill(self, recipient: Recipient) -> tuple[str, str]:
        """The HTML and text exactly as this recipient gets them."""
        return self.rendered.fill(self.values_for(recipient))

    def web(self) -> tuple[str, str]:
        """HTML and text with no personal data (web archive, exports, approvals)."""
        return self.rendered.fill(self.web_values)


def personalise(settings: Settings, rendered: RenderedIssue) -> PersonalIssue:
    """``rendered`` with this workspace's rules for each recipient's values."""
    keys = rendered.keys | {UNSUBSCRIBE_KEY, "recipient.name", "recipient.email"}
    return PersonalIssue(rendered, _values_function(settings, keys), web_values(settings, keys))


def render_personal(settings: Settings, issue: Issue, timings: Timings | None = None, *,
                    cache: bool = False, reuse: bool = False) -> PersonalIssue:
    """Render ``issue`` once for everyone (see `render_issue`), ready to fill per recipient."""
    from cepletter.render.renderer import render_issue

    return personalise(settings, render_issue(settings, issue, timings, cache=cache, reuse=reuse))


def render_editions(settings: Settings, issue: Issue, timings: Timings | None = None, *,
                    cache: bool = False, reuse: bool = False) -> PersonalIssue:
    """``issue`` rendered in every language it has (see `cepletter.issue.edition`).

    The main edition comes back with the others in ``others``; an issue
    without translations gives what `render_personal` gives.
    """
    import dataclasses

    from cepletter.issue.edition import editions

    found = editions(issue, settings.newsletter.language)
    main = render_personal(settings, found[0].issue, timings, cache=cache, reuse=reuse)
    others = tuple(render_personal(settings, e.issue, cache=cache, reuse=reuse) for e in found[1:])
    return dataclasses.replace(main, others=others) if others else main
