"""The issue file: ``issues/<ID>/issue.md``, YAML front matter + Markdown intro.

People edit it by hand and keep it in git, so saving is stable: loading a
saved file and saving it again gives the same bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import yaml

from cepletter import dates
from cepletter.errors import IssueError
from cepletter.frontmatter import split_front_matter
from cepletter.fsutil import atomic_write_text
from cepletter.issue.folder import issue_path, latest_issue_id
from cepletter.sources.items import Event, Item


@dataclass
class IssueItem:
    """A snapshot of what the feed said, so the issue renders the same next year."""

    id: str
    title: str
    link: str
    date: date | datetime | None = None
    category: str | None = None
    image: str | None = None
    summary: str = ""
    source: str | None = None

    @classmethod
    def from_item(cls, item: Item) -> IssueItem:
        return cls(
            id=item.id,
            title=item.title,
            link=item.link,
            date=item.date,
            category=item.category,
            image=item.image,
            summary=item.summary,
            source=item.source,
        )


@dataclass
class Section:
    heading: str
    items: list[IssueItem] = field(default_factory=list)


@dataclass
class Issue:
    id: str
    title: str
    subject: str
    date: date
    preheader: str = ""
    sections: list[Section] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    intro: str = ""  # Markdown
    path: Path | None = None

    @property
    def items(self) -> list[IssueItem]:
        return [item for section in self.sections for item in section.items]

    @property
    def folder(self) -> Path:
        if self.path is None:
            raise IssueError(f"issue {self.id} has not been saved")
        return self.path.parent


# ---------------------------------------------------------------- YAML

class _Dumper(yaml.SafeDumper):
    pass


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _datetime_representer(dumper: yaml.SafeDumper, value: datetime) -> yaml.ScalarNode:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.isoformat()
    return dumper.represent_scalar("tag:yaml.org,2002:timestamp", text)


_Dumper.add_representer(str, _str_representer)
_Dumper.add_representer(datetime, _datetime_representer)


def _dump(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False)


_ITEM_KEYS = ("id", "title", "link", "date", "category", "image", "summary", "source")
_EVENT_KEYS = ("id", "title", "start", "end", "all_day", "location", "link")
_TOP_KEYS = ("title", "subject", "preheader", "date", "sections", "events")


def _item_dict(item: IssueItem) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _ITEM_KEYS:
        value = getattr(item, key)
        if value is None or (value == "" and key not in ("id", "title", "link")):
            continue
        out[key] = value
    return out


def _event_dict(event: Event) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _EVENT_KEYS:
        value = getattr(event, key)
        if value is None or (key == "all_day" and value is False):
            continue
        out[key] = value
    return out


def dumps(issue: Issue) -> str:
    """The issue file's text."""
    front: dict[str, Any] = {
        "title": issue.title,
        "subject": issue.subject,
        "preheader": issue.preheader,
        "date": issue.date,
        "sections": [
            {"heading": s.heading, "items": [_item_dict(i) for i in s.items]} for s in issue.sections
        ],
    }
    if issue.events:
        front["events"] = [_event_dict(e) for e in issue.events]
    intro = issue.intro.strip("\n")
    return f"---\n{_dump(front)}---\n\n{intro}\n" if intro else f"---\n{_dump(front)}---\n"


def save(issue: Issue, path: Path) -> None:
    atomic_write_text(path, dumps(issue))
    issue.path = path


# ---------------------------------------------------------------- loading



def _load_yaml(text: str) -> Any:
    """``yaml.safe_load``, through libyaml when PyYAML has it (ten times faster).

    The same constructors and resolvers build the result either way; a file
    libyaml refuses is read again by the pure-Python parser, whose error
    names the line, and which decides.
    """
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return yaml.load(text, Loader=fast)  # CSafeLoader: the safe constructors, in C
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


def loads(text: str, issue_id: str, where: str) -> Issue:
    """Parse an issue file's text; ``where`` names it in error messages."""
    parts = split_front_matter(text)
    if parts is None:
        raise IssueError(f"{where}: no YAML front matter", "The file must start with a line '---', the settings, then '---'.")
    front_text, body = parts
    try:
        front = _load_yaml(front_text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 2}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise IssueError(f"{where}{line}: invalid YAML: {problem}", "Fix the front matter at that line (check quotes and indentation).") from None
    if not isinstance(front, dict):
        raise IssueError(f"{where}: the front matter must be key: value lines", "See `cepletter draft` for an example.")
    return _issue_from(front, body.lstrip("\n"), issue_id, where)


def _fail(where: str, key: str, problem: str, hint: str = "Fix it in the issue file.") -> IssueError:
    return IssueError(f"{where}: {key}: {problem}", hint)


def _req_str(data: dict[str, Any], key: str, where: str, label: str, allow_empty: bool = False) -> str:
    if key not in data or data[key] is None:
        if allow_empty:
            return ""
        raise _fail(where, label, "missing", f"Add {key}: ... there.")
    value = data[key]
    if isinstance(value, (int, float, date)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _fail(where, label, f"expected text, got {type(value).__name__}")
    if not value.strip() and not allow_empty:
        raise _fail(where, label, "is empty")
    return value


def _opt_str(data: dict[str, Any], key: str, where: str, label: str) -> str | None:
    if data.get(key) is None:
        return None
    return _req_str(data, key, where, label)


def _when(value: Any, where: str, label: str) -> date | datetime | None:
    if value is None or isinstance(value, (date, datetime)):
        return value
    if isinstance(value, str):
        try:
            return dates.parse_iso(value)
        except ValueError:
            pass
    raise _fail(where, label, f"{value!r} is not a date", "Write dates as 2025-12-17 or 2025-12-17T09:30:00+01:00.")


def _check_keys(data: dict[str, Any], allowed: tuple[str, ...], where: str, label: str) -> None:
    for key in data:
        if key not in allowed:
            raise _fail(where, f"{label}{key}", "unknown key", f"Remove it; allowed keys: {', '.join(allowed)}.")


def _check_link(link: str, where: str, label: str) -> None:
    if not re.match(r"^https?://[^\s/]+", link, re.I):
        raise _fail(where, label, f"{link!r} is not an http(s) link", "Use a full address starting with https://.")


def _issue_from(front: dict[str, Any], body: str, issue_id: str, where: str) -> Issue:
    _check_keys(front, _TOP_KEYS, where, "")
    issue_date = _when(front.get("date"), where, "date")
    if issue_date is None:
        raise _fail(where, "date", "missing", "Add date: 2025-12-18.")
    if isinstance(issue_date, datetime):
        issue_date = issue_date.date()
    sections_raw = front.get("sections")
    if sections_raw is None:
        raise _fail(where, "sections", "missing", "Add sections: with at least one heading and its items.")
    if not isinstance(sections_raw, list):
        raise _fail(where, "sections", "must be a list of {heading, items}")
    seen_ids: dict[str, str] = {}
    sections: list[Section] = []
    for s_index, raw in enumerate(sections_raw, start=1):
        label = f"sections[{s_index}]"
        if not isinstance(raw, dict):
            raise _fail(where, label, "must have heading: and items:")
        _check_keys(raw, ("heading", "items"), where, f"{label}.")
        # One section may have an empty heading: the issue is then a single list, without a heading.
        heading = _req_str(raw, "heading", where, f"{label}.heading", allow_empty=len(sections_raw) == 1)
        items_raw = raw.get("items")
        if not isinstance(items_raw, list) or not items_raw:
            raise _fail(where, f"{label} ({heading})", "has no items", "Add items or remove the section.")
        items: list[IssueItem] = []
        for i_index, iraw in enumerate(items_raw, start=1):
            ilabel = f"{label}.items[{i_index}]"
            if not isinstance(iraw, dict):
                raise _fail(where, ilabel, "must be a mapping with id, title and link")
            _check_keys(iraw, _ITEM_KEYS, where, f"{ilabel}.")
            item_id = _req_str(iraw, "id", where, f"{ilabel}.id")
            if item_id in seen_ids:
                raise _fail(where, f"{ilabel}.id", f"duplicate id {item_id!r} (also {seen_ids[item_id]})", "Keep each item once.")
            seen_ids[item_id] = ilabel
            link = _req_str(iraw, "link", where, f"{ilabel}.link")
            _check_link(link, where, f"{ilabel}.link")
            image = _opt_str(iraw, "image", where, f"{ilabel}.image")
            if image is not None:
                _check_link(image, where, f"{ilabel}.image")
            items.append(IssueItem(
                id=item_id,
                title=_req_str(iraw, "title", where, f"{ilabel}.title"),
                link=link,
                date=_when(iraw.get("date"), where, f"{ilabel}.date"),
                category=_opt_str(iraw, "category", where, f"{ilabel}.category"),
                image=image,
                summary=_req_str(iraw, "summary", where, f"{ilabel}.summary", allow_empty=True),
                source=_opt_str(iraw, "source", where, f"{ilabel}.source"),
            ))
        sections.append(Section(heading=heading, items=items))
    events: list[Event] = []
    events_raw = front.get("events") or []
    if not isinstance(events_raw, list):
        raise _fail(where, "events", "must be a list")
    for e_index, eraw in enumerate(events_raw, start=1):
        elabel = f"events[{e_index}]"
        if not isinstance(eraw, dict):
            raise _fail(where, elabel, "must be a mapping with title and start")
        _check_keys(eraw, _EVENT_KEYS, where, f"{elabel}.")
        start = _when(eraw.get("start"), where, f"{elabel}.start")
        if start is None:
            raise _fail(where, f"{elabel}.start", "missing")
        event_link = _opt_str(eraw, "link", where, f"{elabel}.link")
        if event_link is not None:
            _check_link(event_link, where, f"{elabel}.link")
        all_day = eraw.get("all_day", False)
        if not isinstance(all_day, bool):
            raise _fail(where, f"{elabel}.all_day", "must be true or false")
        events.append(Event(
            id=_opt_str(eraw, "id", where, f"{elabel}.id"),
            title=_req_str(eraw, "title", where, f"{elabel}.title"),
            start=start,
            end=_when(eraw.get("end"), where, f"{elabel}.end"),
            all_day=all_day,
            location=_opt_str(eraw, "location", where, f"{elabel}.location"),
            link=event_link,
        ))
    return Issue(
        id=issue_id,
        title=_req_str(front, "title", where, "title"),
        subject=_req_str(front, "subject", where, "subject"),
        preheader=_req_str(front, "preheader", where, "preheader", allow_empty=True),
        date=issue_date,
        sections=sections,
        events=events,
        intro=body,
    )


def load(path: Path) -> Issue:
    """Load ``issues/<ID>/issue.md``."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise IssueError(f"{path}: not found", "Make it with `cepletter draft`, or check the issue ID.") from None
    except UnicodeDecodeError:
        raise IssueError(f"{path}: not UTF-8 text", "Save the file as UTF-8.") from None
    issue = loads(text, path.parent.name, str(path))
    issue.path = path
    return issue


def resolve(issues_dir: Path, issue_id: str | None) -> Issue:
    """Load the issue named ``issue_id``, or the latest one."""
    return load(issue_path(issues_dir, issue_id or latest_issue_id(issues_dir)))
