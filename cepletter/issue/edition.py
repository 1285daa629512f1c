"""Editions: one issue in several languages.

``issue.md`` is the issue in ``[newsletter] language``: its items, their order,
links, images, dates and events. A translation lives beside it as
``issue.<lang>.md`` (``issue.fr.md``, ``issue.nl-BE.md``) and holds only the
texts, keyed by what they translate; its Markdown body is the intro::

    ---
    title: Lettre d'information de décembre 2025
    subject: "Lettre d'information du CEP : le calendrier 2026"
    preheader: ""                     # optional; empty: made from the translated titles
    sections:
      CEP Events: Événements du CEP   # heading in issue.md: heading in French
    items:
      https://www.cep-probation.org/?p=1001:   # an item's id in issue.md
        title: …
        summary: …
        category: …                   # optional
        link: https://…/fr/…          # optional: the article in this language
    events:
      conference@cep:                 # an event's id (or its title) in issue.md
        title: …
        location: …
    ---

    Bienvenue …

A text the translation leaves out (or empty) stays as issue.md has it, and
`untranslated` names it, so `check` can warn. Structure stays in one file:
adding, removing or reordering an item is done once, in issue.md.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cepletter import i18n
from cepletter.errors import IssueError
from cepletter.issue.file import (
    Issue,
    _check_keys,
    _check_link,
    _fail,
    _opt_str,
    _req_str,
    _Where,
    read_front,
)
from cepletter.sources.items import Event

_FILE = re.compile(r"^issue\.([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*)\.md$")
_TOP_KEYS = ("title", "subject", "preheader", "sections", "items", "events")
_ITEM_KEYS = ("title", "summary", "category", "link")
_EVENT_KEYS = ("title", "location")


@dataclass
class ItemText:
    title: str = ""
    summary: str = ""
    category: str = ""
    link: str = ""


@dataclass
class EventText:
    title: str = ""
    location: str = ""


@dataclass
class Translation:
    """The texts of ``issue.<lang>.md``; an empty text means "not translated"."""

    language: str
    path: Path
    title: str = ""
    subject: str = ""
    preheader: str = ""
    intro: str = ""
    sections: dict[str, str] = field(default_factory=dict)
    items: dict[str, ItemText] = field(default_factory=dict)
    events: dict[str, EventText] = field(default_factory=dict)


@dataclass(frozen=True)
class Untranslated:
    """A text of issue.md that an edition shows in issue.md's language."""

    language: str
    path: Path  # the translation file
    key: str  # which text: "title", "items[<id>].summary", "sections[<heading>]"
    original: str  # the text left in the main language, for messages
    yaml: str = ""  # where it goes in the translation file: "items: <id>: summary: …"


def translation_files(folder: Path) -> dict[str, Path]:
    """The translations beside an issue.md, by language tag (normalised), in tag order."""
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        match = _FILE.match(path.name)
        if match and path.is_file():
            found[i18n.normalise(match.group(1))] = path
    return dict(sorted(found.items()))


def load_translation(path: Path, issue: Issue, language: str) -> Translation:
    """Read ``path`` (issue.<lang>.md) against ``issue``: every key must name a text of the issue."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise IssueError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise IssueError(f"{path}: not UTF-8 text", "Save the file as UTF-8.") from None
    front, body, where = read_front(text, str(path))
    _check_keys(front, _TOP_KEYS, where, "")
    out = Translation(language=language, path=path, intro=body if body.strip() else "")
    for key in ("title", "subject", "preheader"):
        setattr(out, key, _req_str(front, key, where, key, allow_empty=True))

    headings = {s.heading for s in issue.sections if s.heading}
    for heading, value in _mapping(front, "sections", where).items():
        label = f"sections.{heading}"
        if heading not in headings:
            raise _fail(where, label, "issue.md has no section with this heading",
                        f"Use a heading of issue.md as the key: {', '.join(sorted(headings)) or '(none)'}.")
        out.sections[heading] = _text(value, where, label)

    item_ids = {item.id for item in issue.items}
    for item_id, value in _mapping(front, "items", where).items():
        label = f"items.{item_id}"
        if item_id not in item_ids:
            raise _fail(where, label, "issue.md has no item with this id",
                        "Use the id: of the item in issue.md as the key.")
        if not isinstance(value, dict):
            raise _fail(where, label, "must hold title:, summary:, category: or link:")
        _check_keys(value, _ITEM_KEYS, where, f"{label}.")
        texts = ItemText(**{key: _req_str(value, key, where, f"{label}.{key}", allow_empty=True)
                            for key in _ITEM_KEYS})
        if texts.link.strip():
            _check_link(texts.link, where, f"{label}.link")
        out.items[item_id] = texts

    event_keys = {key for event in issue.events for key in _event_keys(event)}
    for event_key, value in _mapping(front, "events", where).items():
        label = f"events.{event_key}"
        if event_key not in event_keys:
            raise _fail(where, label, "issue.md has no event with this id or title",
                        "Use the id: (or the title:) of the event in issue.md as the key.")
        if not isinstance(value, dict):
            raise _fail(where, label, "must hold title: or location:")
        _check_keys(value, _EVENT_KEYS, where, f"{label}.")
        out.events[event_key] = EventText(
            title=_req_str(value, "title", where, f"{label}.title", allow_empty=True),
            location=_opt_str(value, "location", where, f"{label}.location") or "",
        )
    return out


def _mapping(front: dict[str, Any], key: str, where: _Where) -> dict[str, Any]:
    value = front.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(where, key, "must be a mapping: the text in issue.md (or its id), a colon, the translation")
    return {str(k): v for k, v in value.items()}


def _text(value: Any, where: _Where, label: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _fail(where, label, f"expected text, got {type(value).__name__}")
    return value


def _event_keys(event: Event) -> list[str]:
    return [key for key in (event.id, event.title) if key]


def _event_text(translation: Translation, event: Event) -> EventText:
    for key in _event_keys(event):
        if key in translation.events:
            return translation.events[key]
    return EventText()


def edition(issue: Issue, translation: Translation) -> Issue:
    """``issue`` in the translation's language: its texts where translated, issue.md's elsewhere."""
    out = copy.deepcopy(issue)
    out.language = translation.language
    out.title = translation.title if translation.title.strip() else issue.title
    out.subject = translation.subject if translation.subject.strip() else issue.subject
    # A preheader issue.md leaves empty is made from the items: here, the translated ones.
    out.preheader = translation.preheader if translation.preheader.strip() else issue.preheader
    out.intro = translation.intro if translation.intro.strip() else issue.intro
    headings = {h.lower(): t for h, t in translation.sections.items() if t.strip()}
    for section in out.sections:
        section.heading = headings.get(section.heading.lower(), section.heading)
        for item in section.items:
            texts = translation.items.get(item.id, ItemText())
            item.title = texts.title if texts.title.strip() else item.title
            item.summary = texts.summary if texts.summary.strip() else item.summary
            if texts.link.strip():
                item.link = texts.link.strip()
            if texts.category.strip():
                item.category = texts.category
            elif item.category and item.category.lower() in headings:
                # A category named like a section reads as that section's translation.
                item.category = headings[item.category.lower()]
    for event, original in zip(out.events, issue.events, strict=True):
        said = _event_text(translation, original)
        event.title = said.title if said.title.strip() else event.title
        if said.location.strip():
            event.location = said.location
    return out


def untranslated(issue: Issue, translation: Translation) -> list[Untranslated]:
    """Every text of issue.md that the translation leaves in issue.md's language, in file order."""
    missing: list[Untranslated] = []

    def note(key: str, yaml: str, original: str | None, translated: str) -> None:
        if original and original.strip() and not translated.strip():
            missing.append(Untranslated(translation.language, translation.path, key, _one_line(original), yaml))

    note("title", "title: …", issue.title, translation.title)
    note("subject", "subject: …", issue.subject, translation.subject)
    note("preheader", "preheader: …", issue.preheader, translation.preheader)
    note("the intro", "the intro, below the closing ---", issue.intro, translation.intro)
    headings = {h.lower() for h, t in translation.sections.items() if t.strip()}
    for section in issue.sections:
        note(f"sections[{section.heading}]", f"sections: {_key(section.heading)}: …",
             section.heading, translation.sections.get(section.heading, ""))
    for section in issue.sections:
        for item in section.items:
            texts = translation.items.get(item.id, ItemText())
            key, yaml = f"items[{item.id}]", f"items: {_key(item.id)}:"
            note(f"{key}.title", f"{yaml} title: …", item.title, texts.title)
            note(f"{key}.summary", f"{yaml} summary: …", item.summary, texts.summary)
            shown = item.category and item.category.lower() != section.heading.lower()
            if shown and item.category and item.category.lower() not in headings:
                note(f"{key}.category", f"{yaml} category: …", item.category, texts.category)
    for event in issue.events:
        key = _event_keys(event)[0]
        note(f"events[{key}].title", f"events: {_key(key)}: title: …", event.title, _event_text(translation, event).title)
    return missing


def _key(text: str) -> str:
    """``text`` as a YAML key: quoted when it would not read back as itself."""
    if re.fullmatch(r"[A-Za-z0-9][\w ./?=&%+~-]*", text) and ": " not in text and " #" not in text:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _one_line(text: str, limit: int = 60) -> str:
    text = " ".join(re.sub(r"<[^>]*>", " ", text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


@dataclass(frozen=True)
class Edition:
    """One language of an issue: the issue as that language reads it, and what it left untranslated."""

    language: str
    issue: Issue
    translation: Translation | None = None  # None for issue.md itself
    original: Issue | None = None  # issue.md, for a translation

    @property
    def is_main(self) -> bool:
        return self.translation is None

    @property
    def untranslated(self) -> list[Untranslated]:
        if self.translation is None or self.original is None:
            return []
        return untranslated(self.original, self.translation)


def editions(issue: Issue, main_language: str) -> list[Edition]:
    """issue.md's edition (first), then one per translation beside it, in tag order."""
    main = i18n.normalise(main_language)
    found = [Edition(main, issue)]
    if issue.path is None:
        return found
    for language, path in translation_files(issue.path.parent).items():
        if language == main:
            raise IssueError(
                f"{path}: {language} is the language of issue.md itself ([newsletter] language)",
                f"Write the {language} texts in issue.md, and remove {path.name}.")
        if not i18n.known(language):
            raise IssueError(f"{path}: {language!r} is not a language cepletter knows",
                             "Name the file issue.<language>.md with a language code such as fr, nl or pt-BR.")
        translation = load_translation(path, issue, language)
        found.append(Edition(language, edition(issue, translation), translation, issue))
    return found


def languages(issue: Issue, main_language: str) -> list[str]:
    """The languages an issue goes out in: issue.md's, then its translations' (files only, not read)."""
    main = i18n.normalise(main_language)
    found = [main]
    if issue.path is not None:
        found += [lang for lang in translation_files(issue.path.parent) if lang != main]
    return found


def pick(available: list[str], wanted: str | None) -> str | None:
    """Which of ``available`` editions serves a reader who asks for ``wanted``; None: the main one.

    ``fr-BE`` takes ``fr-BE``, else ``fr``, else any ``fr-…``; a language
    name works too ("Français", "French", "Frans").
    """
    if not wanted or not wanted.strip():
        return None
    text = wanted.strip()
    if i18n.is_tag(text):
        tag = i18n.normalise(text)
        if tag in available:
            return tag
        base = i18n.primary(tag)
        if base in available:
            return base
        for language in available:
            if i18n.primary(language) == base:
                return language
    folded = text.casefold()
    for language in available:
        if folded in _names(language):
            return language
    return None


def _names(language: str) -> frozenset[str]:
    names = {language.casefold()}
    try:
        names.add(i18n.display_name(language).casefold())
        names.add(i18n.display_name(language, "en").casefold())
    except ValueError:
        pass
    return frozenset(names)
