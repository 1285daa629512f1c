"""The issue as the desk edits it, and the edits the page sends.

The issue file is the truth; a `Document` adds only what the file cannot hold
while someone works: sections that have no items yet, and a key per section so
that an edit names the section it meant even after others moved. Every edit is
checked by writing the file's text and reading it back with the issue file's
own loader, so the desk can never save a file that `cepletter` would refuse.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cepletter import dates
from cepletter.errors import IssueError
from cepletter.issue.draft import DEFAULT_HEADING
from cepletter.issue.draft import preheader as auto_preheader
from cepletter.issue.file import Issue, IssueItem, Section, dumps, loads

ISSUE_FIELDS = ("title", "subject", "preheader", "intro")
ITEM_FIELDS = ("title", "summary", "image", "category", "link", "date")
_keys = itertools.count(1)


def _new_key() -> str:
    return f"s{next(_keys)}"


@dataclass
class DeskSection:
    key: str
    heading: str
    items: list[IssueItem] = field(default_factory=list)


def following_preheader(items: Sequence[IssueItem]) -> str:
    """The preheader that follows the content: the one `draft` writes for these items."""
    return auto_preheader(items) if items else ""


@dataclass
class Document:
    """An issue being edited: its fields, its sections (empty ones too), and whether it has sections at all."""

    issue: Issue
    sections: list[DeskSection]
    single: bool = False  # "no sections": one list, saved as one section with an empty heading
    _text: str | None = field(default=None, repr=False, compare=False)  # the file's text, once checked

    @classmethod
    def of(cls, issue: Issue, before: Document | None = None) -> Document:
        """The document of a loaded issue; ``before`` lends its empty sections and keys where headings match."""
        single = len(issue.sections) == 1 and issue.sections[0].heading == ""
        if not issue.sections and before is not None:
            single = before.single
        old_keys: dict[str, str | None] = {s.heading: s.key for s in before.sections} if before else {}
        sections = [DeskSection(old_keys.pop(s.heading, None) or _new_key(), s.heading, list(s.items))
                    for s in issue.sections]
        doc = cls(issue=issue, sections=sections, single=single)
        if before is not None and not single:
            present = {s.heading for s in sections}
            doc.sections += [DeskSection(s.key, s.heading) for s in before.sections
                             if not s.items and s.heading not in present]
        issue.sections = []  # the document's sections are the only copy
        return doc

    # ------------------------------------------------------------ the file

    def to_issue(self) -> Issue:
        """The issue as saved: every section with items, in order."""
        issue = copy.copy(self.issue)
        issue.sections = [Section(s.heading, list(s.items)) for s in self.sections if s.items]
        return issue

    def text(self) -> str:
        return self._text if self._text is not None else dumps(self.to_issue())

    @property
    def items(self) -> list[IssueItem]:
        return [item for section in self.sections for item in section.items]

    @property
    def preheader_follows(self) -> bool:
        return self.issue.preheader == following_preheader(self.items)

    # ------------------------------------------------------------ edits

    def edited(self, edits: Iterable[Mapping[str, Any]], candidates: Mapping[str, IssueItem]) -> Document:
        """A copy with ``edits`` made, checked by the issue file's loader; IssueError names the problem."""
        doc = copy.deepcopy(self)
        doc._text = None
        follows = doc.preheader_follows
        for edit in edits:
            if edit.get("op") == "set" and edit.get("field") == "preheader":
                follows = False
            elif edit.get("op") == "reset_preheader":
                follows = True
            doc._apply(edit, candidates)
        if follows:
            doc.issue.preheader = following_preheader(doc.items)
        where = f"issues/{doc.issue.id}/issue.md"
        text = doc.text()
        loads(text, doc.issue.id, where)  # raises IssueError for anything the file may not hold
        doc._text = text
        return doc

    def _apply(self, edit: Mapping[str, Any], candidates: Mapping[str, IssueItem]) -> None:
        op = edit.get("op")
        if op == "set":
            name = _choice(edit, "field", ISSUE_FIELDS)
            value = _text(edit, "value")
            setattr(self.issue, name, value if name == "intro" else " ".join(value.split()))
        elif op == "reset_preheader":
            pass  # done after all edits, from the final items
        elif op == "item":
            self._set_item(self._item(_text(edit, "id")), _choice(edit, "field", ITEM_FIELDS), _text(edit, "value"))
        elif op == "add":
            self._add(_text(edit, "id"), candidates)
        elif op == "remove":
            item = self._item(_text(edit, "id"))
            for section in self.sections:
                if item in section.items:
                    section.items.remove(item)
        elif op == "move":
            self._move_by(self._item(_text(edit, "id")), _step(edit))
        elif op == "move_to":
            index = edit.get("index")
            if index is not None and (not isinstance(index, int) or isinstance(index, bool)):
                raise IssueError("move_to: index must be a number")
            self._move_to(self._item(_text(edit, "id")), self._section(_text(edit, "section")), index)
        elif op == "add_section":
            heading = _heading(edit)
            if self.single:
                raise IssueError("this issue has no sections", "Switch sections on first.")
            self.sections.append(DeskSection(_new_key(), heading))
        elif op == "rename_section":
            section = self._section(_text(edit, "section"))
            if self.single:
                raise IssueError("this issue has no sections", "Switch sections on first.")
            section.heading = _heading(edit)
        elif op == "delete_section":
            self._delete_section(self._section(_text(edit, "section")))
        elif op == "move_section":
            section = self._section(_text(edit, "section"))
            index = self.sections.index(section)
            target = index + _step(edit)
            if 0 <= target < len(self.sections):
                self.sections[index], self.sections[target] = self.sections[target], section
        elif op == "sections":
            on = edit.get("on")
            if not isinstance(on, bool):
                raise IssueError("sections: 'on' must be true or false")
            self._switch_sections(on)
        else:
            raise IssueError(f"unknown edit {op!r}")

    def _item(self, item_id: str) -> IssueItem:
        for item in self.items:
            if item.id == item_id:
                return item
        raise IssueError(f"no item {item_id!r} in this issue", "It may have been removed in the file meanwhile.")

    def _section(self, key: str) -> DeskSection:
        for section in self.sections:
            if section.key == key:
                return section
        raise IssueError(f"no section {key!r}", "It may have been removed meanwhile.")

    def _home(self, item: IssueItem) -> DeskSection:
        return next(s for s in self.sections if item in s.items)

    def _set_item(self, item: IssueItem, name: str, value: str) -> None:
        if name == "summary":
            item.summary = value.strip("\n")
        elif name == "date":
            value = value.strip()
            if not value:
                item.date = None
                return
            try:
                item.date = dates.parse_iso(value)
            except ValueError:
                raise IssueError(f"{value!r} is not a date",
                                 "Write dates as 2025-12-17 or 2025-12-17T09:30:00+01:00.") from None
        elif name in ("image", "category"):
            setattr(item, name, " ".join(value.split()) or None)
        else:
            setattr(item, name, " ".join(value.split()))

    def _add(self, item_id: str, candidates: Mapping[str, IssueItem]) -> None:
        if any(item.id == item_id for item in self.items):
            return  # ticked twice: it is in already
        candidate = candidates.get(item_id)
        if candidate is None:
            raise IssueError(f"no candidate item {item_id!r}", "Reload the page: the sources may have changed.")
        item = copy.deepcopy(candidate)
        # Into the section of its category, else the last one; a new section only when there is none.
        category = (item.category or "").lower()
        target = next((s for s in self.sections if s.heading.lower() == category and category), None)
        if target is None and self.sections:
            target = self.sections[-1]
        if target is None:
            target = DeskSection(_new_key(), "" if self.single else item.category or DEFAULT_HEADING)
            self.sections.append(target)
        target.items.append(item)

    def _move_by(self, item: IssueItem, step: int) -> None:
        """One place up or down; past a section's end, into the next section with items."""
        home = self._home(item)
        index = home.items.index(item)
        target = index + step
        if 0 <= target < len(home.items):
            home.items[index], home.items[target] = home.items[target], item
            return
        position = self.sections.index(home)
        others = self.sections[position + 1:] if step > 0 else list(reversed(self.sections[:position]))
        if not others:
            return  # first or last of the issue already
        home.items.remove(item)
        nxt = others[0]
        if step > 0:
            nxt.items.insert(0, item)
        else:
            nxt.items.append(item)

    def _move_to(self, item: IssueItem, section: DeskSection, index: int | None) -> None:
        self._home(item).items.remove(item)
        if index is None or index >= len(section.items):
            section.items.append(item)
        else:
            section.items.insert(max(index, 0), item)

    def _delete_section(self, section: DeskSection) -> None:
        """Its items join the section before it (the first section's, the one after it)."""
        if section.items:
            position = self.sections.index(section)
            neighbours = self.sections[:position] + self.sections[position + 1:]
            if not neighbours:
                raise IssueError(f"the section {section.heading!r} is the only one",
                                 "Remove its items, or switch to \"no sections\" instead.")
            target = self.sections[position - 1] if position > 0 else self.sections[1]
            target.items.extend(section.items)
        self.sections.remove(section)

    def _switch_sections(self, on: bool) -> None:
        items = self.items
        if not on:
            self.single = True
            self.sections = [DeskSection(_new_key(), "", items)] if items else []
            return
        if not self.single:
            return
        # As `draft` groups them: a section per category, in order of first appearance.
        self.single = False
        grouped: dict[str, DeskSection] = {}
        for item in items:
            heading = item.category or DEFAULT_HEADING
            grouped.setdefault(heading, DeskSection(_new_key(), heading)).items.append(item)
        self.sections = list(grouped.values())


def _text(edit: Mapping[str, Any], key: str) -> str:
    value = edit.get(key)
    if not isinstance(value, str):
        raise IssueError(f"{edit.get('op')}: {key} must be text")
    return value


def _choice(edit: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = _text(edit, key)
    if value not in allowed:
        raise IssueError(f"{edit.get('op')}: {key} {value!r} is not one of {', '.join(allowed)}")
    return value


def _step(edit: Mapping[str, Any]) -> int:
    by = edit.get("by")
    if by not in (-1, 1) or isinstance(by, bool):
        raise IssueError(f"{edit.get('op')}: by must be -1 or 1")
    return int(by)


def _heading(edit: Mapping[str, Any]) -> str:
    heading = " ".join(_text(edit, "heading").split())
    if not heading:
        raise IssueError("a section needs a heading", "Type its name first.")
    return heading
