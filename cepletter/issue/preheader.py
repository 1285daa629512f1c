"""The preheader: the teaser an inbox shows after the subject.

An issue that sets ``preheader:`` gets that text. One that leaves it empty
gets "In this issue: A; B; C" from its items, made when it is rendered, so
the teaser follows the content when items are added, removed or renamed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from cepletter import i18n

PREFIX = "In this issue: "
MORE = " and more"


def _words(language: str) -> tuple[str, str]:
    """(PREFIX, MORE) in ``language``: "Dans ce numéro : ", " et plus encore"."""
    if i18n.catalogue_language(language) == i18n.SOURCE:
        return PREFIX, MORE
    tr = i18n.catalogue(language)
    # Translators: the start of the inbox teaser; the items' titles follow, separated by "; ".
    prefix = tr.gettext("In this issue: %(titles)s").split("%(titles)s")[0]
    # Translators: the end of the inbox teaser when not every title fits.
    more = tr.gettext("%(titles)s and more").split("%(titles)s")[-1]
    return prefix, more


class Titled(Protocol):
    @property
    def title(self) -> str: ...


def from_items(items: Sequence[Titled], limit: int = 110, language: str = "en") -> str:
    """"In this issue: A; B; C" from the first items' titles, kept short, in ``language``."""
    from cepletter.sources.sanitize import shorten

    if not items:
        return ""
    prefix, more = _words(language)
    text = prefix
    for index, item in enumerate(items):
        addition = item.title if index == 0 else f"; {item.title}"
        if index and len(text) + len(addition) > limit:
            return text + more
        text += addition
    return shorten(text, limit + 20)


class HasPreheader(Protocol):
    @property
    def preheader(self) -> str: ...

    @property
    def items(self) -> Sequence[Titled]: ...


def of_issue(issue: HasPreheader, language: str = "en") -> str:
    """The preheader the email gets: the one the issue sets, else one made from its items."""
    return issue.preheader.strip() or from_items(issue.items, language=language)


def missing_titles(preheader: str, titles: Iterable[str], language: str = "en") -> list[str]:
    """The titles an "In this issue: A; B" preheader names that are not among ``titles``.

    Only that form (the one made from the items) names titles in a way that
    can be read back; any other text gives [].
    """
    prefix, more = _words(language)
    text = preheader.strip()
    if not text.startswith(prefix.strip()):
        return []
    text = text[len(prefix.strip()):].lstrip()
    if text.endswith(more):
        text = text[: -len(more)]
    known = sorted(set(titles), key=len, reverse=True)  # the longest first: a title may hold "; "
    missing: list[str] = []
    while text:
        match = next((t for t in known if text.startswith(t) and text[len(t):][:2] in ("", "; ")), None)
        if match is None and text.endswith("…") and "; " not in text:
            # The last title, shortened: it is there if an item's title starts with what is left.
            start = text[:-1].rstrip(" ,;:.-–—(")
            match = next((t for t in known if t.startswith(start)), None)
            if match is not None:
                break
        if match is None:
            name, _, text = text.partition("; ")
            missing.append(name)
            continue
        text = text[len(match) + 2:]
    return missing
