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
    # The language of an edition made from a translation (issue.<lang>.md beside issue.md);
    # None for issue.md itself, which is in [newsletter] language.
    language: str | None = None

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

# Aliases (*name) repeat a value without copying it in the file: 200,000 of them
# in a 1 MB file make an issue with 200,000 events. No issue needs more than a
# few; the values they add in all are counted, and past this many the file is refused.
ALIAS_EXPANSION_LIMIT = 10_000
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


def _timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    """A YAML date, or its text when it names no real day (2026-13-01): the issue check then says so."""
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except (ValueError, AttributeError):
        return loader.construct_scalar(node)


class _PureLoader(yaml.SafeLoader):
    pass


_PureLoader.add_constructor(_TIMESTAMP, _timestamp)
_LOADERS: list[Any] = []
if getattr(yaml, "CSafeLoader", None) is not None:
    class _FastLoader(yaml.CSafeLoader):  # the safe constructors, with libyaml's parser
        pass

    _FastLoader.add_constructor(_TIMESTAMP, _timestamp)
    _LOADERS.append(_FastLoader)
_LOADERS.append(_PureLoader)


def _compose(text: str) -> yaml.Node | None:
    """The node graph of ``text``, through libyaml when PyYAML has it (ten times faster).

    A file libyaml refuses is read again by the pure-Python parser, whose error
    names the line, and which decides.
    """
    for loader_class in _LOADERS:
        loader = loader_class(text)
        try:
            node: yaml.Node | None = loader.get_single_node()
            return node
        except yaml.YAMLError:
            if loader_class is _PureLoader:
                raise
        finally:
            loader.dispose()
    return None  # pragma: no cover - the pure loader either returns or raises


def _construct(node: yaml.Node | None) -> Any:
    if node is None:
        return None
    loader = _PureLoader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _load_yaml(text: str) -> Any:
    """``yaml.safe_load``, but an impossible date stays text (see `_timestamp`)."""
    return _construct(_compose(text))


class AliasBomb(Exception):
    """Aliases would grow the front matter past `ALIAS_EXPANSION_LIMIT` values, or without end."""

    def __init__(self, node: yaml.Node, repeats: int | None) -> None:
        super().__init__("a value inside itself" if repeats is None else f"{repeats} repeated values")
        self.node = node
        self.repeats = repeats  # None: the value contains itself


def check_aliases(root: yaml.Node | None, limit: int = ALIAS_EXPANSION_LIMIT) -> None:
    """Raise AliasBomb when aliases add more than ``limit`` values to what the file spells out.

    Works on the node graph, where an alias is the same node reached again, so
    the count costs one visit per node however large the expansion.
    """
    if root is None:
        return
    size: dict[int, int] = {}  # node id -> values it stands for, itself included; set when done
    uses: dict[int, int] = {id(root): 1}
    nodes: dict[int, yaml.Node] = {id(root): root}
    stack = [(root, iter(_children(root)))]
    while stack:
        node, pending = stack[-1]
        child = next(pending, None)
        if child is None:
            stack.pop()
            size[id(node)] = 1 + sum(size[id(c)] for c in _children(node))
            continue
        uses[id(child)] = uses.get(id(child), 0) + 1
        if id(child) not in nodes:
            nodes[id(child)] = child
            stack.append((child, iter(_children(child))))
        elif id(child) not in size:
            raise AliasBomb(child, None)  # &a [*a]: on the way down to itself
    extra = size[id(root)] - len(nodes)
    if extra <= limit:
        return
    worst = max((nodes[k] for k, n in uses.items() if n > 1),
                key=lambda n: (uses[id(n)] - 1) * size[id(n)])
    raise AliasBomb(worst, extra)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _line_map(root: yaml.Node | None) -> dict[str, int]:
    """Key path (as messages name it: ``sections[1].items[2].link``) → line in the front matter (from 1)."""
    lines: dict[str, int] = {}
    stack: list[tuple[str, yaml.Node]] = [("", root)] if root is not None else []
    seen: set[int] = set()
    while stack:
        path, node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key_node, value in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                label = f"{path}.{key_node.value}" if path else str(key_node.value)
                lines.setdefault(label, key_node.start_mark.line + 1)
                stack.append((label, value))
        elif isinstance(node, yaml.SequenceNode):
            for index, value in enumerate(node.value, start=1):
                label = f"{path}[{index}]"
                lines.setdefault(label, value.start_mark.line + 1)
                stack.append((label, value))
    return lines


_LAST_PART = re.compile(r"(?:\.[^.\[]*|\[\d+\])$")


class _Where:
    """The issue file being read, for messages: its name and the line of each key path."""

    def __init__(self, name: str, root: yaml.Node | None = None) -> None:
        self.name = name
        self._root = root
        self._lines: dict[str, int] | None = None if root is not None else {}

    def line_of(self, label: str) -> int | None:
        """The file line of ``label``, or of the nearest enclosing value that is in the file."""
        if self._lines is None:
            self._lines = _line_map(self._root)
        while label:
            if label in self._lines:
                # The front matter starts on the file's second line, after '---'.
                return self._lines[label] + 1
            shorter = _LAST_PART.sub("", label)
            if shorter == label:
                break
            label = shorter
        return None

    def at(self, label: str) -> str:
        line = self.line_of(label)
        return f"{self.name}, line {line}" if line is not None else self.name


def _yaml_error(exc: yaml.YAMLError, front: str, where: str) -> IssueError:
    """A YAML syntax error in plain words, with the file line."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    lines = front.splitlines()
    text = lines[mark.line] if mark is not None and mark.line < len(lines) else ""
    at = f"{where}, line {mark.line + 2}" if mark is not None else where
    if "mapping values are not allowed" in problem:
        match = re.match(r"\s*(?:-\s+)?([A-Za-z_][\w-]*):\s+(.*?)\s*$", text)
        if match:
            key, value = match.groups()
            quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            return IssueError(f"{at}: {key}: a {key} containing ': ' must be in quotes",
                              f"Write it as {key}: {quoted} there.")
        return IssueError(f"{at}: a value containing ': ' must be in quotes",
                          'Put the value in double quotes, e.g. title: "Probation: what works".')
    if "\t" in text or "tab" in problem:
        return IssueError(f"{at}: a tab character; the front matter is indented with spaces only",
                          "Replace the tab with spaces (two per level).")
    return IssueError(f"{at}: invalid YAML: {problem}", "Fix the front matter at that line (check quotes and indentation).")


def loads(text: str, issue_id: str, where: str) -> Issue:
    """Parse an issue file's text; ``where`` names it in error messages."""
    front, body, located = read_front(text, where)
    return _issue_from(front, body, issue_id, located)


def read_front(text: str, where: str) -> tuple[dict[str, Any], str, _Where]:
    """(the front matter, the Markdown after it, line lookup for messages) of an issue file's text.

    Shared by issue.md and its translations (issue.<lang>.md), so both read
    YAML with the same limits and plain-word errors.
    """
    parts = split_front_matter(text)
    if parts is None:
        if re.match(r"\A\ufeff?---[ \t]*\r?\n", text):
            raise IssueError(f"{where}: the front matter has no closing '---' line",
                             "End the settings with a line '---' on its own, before the intro.")
        raise IssueError(f"{where}: no YAML front matter", "The file must start with a line '---', the settings, then '---'.")
    front_text, body = parts
    try:
        root = _compose(front_text)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, front_text, where) from None
    try:
        if "*" in front_text:  # only aliases repeat values
            check_aliases(root)
    except AliasBomb as bomb:
        at = f"{where}, line {bomb.node.start_mark.line + 2}"
        if bomb.repeats is None:
            raise IssueError(f"{at}: the value that starts here contains itself through an *alias",
                             "Remove the alias; write the value out.") from None
        raise IssueError(
            f"{at}: *aliases repeat the value that starts here into {bomb.repeats:,} more values "
            f"(at most {ALIAS_EXPANSION_LIMIT:,})",
            "Write the values out instead of repeating them with *aliases.",
        ) from None
    try:
        front = _construct(root)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, front_text, where) from None
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:
        # A tag such as !!int or !!float on text that is not one.
        raise IssueError(f"{where}: a value cannot be read: {exc}",
                         "Remove the !!tag, or fix the value it is on.") from None
    if not isinstance(front, dict):
        raise IssueError(f"{where}: the front matter must be key: value lines", "See `cepletter draft` for an example.")
    return front, body.lstrip("\n"), _Where(where, root)


def _fail(where: _Where, key: str, problem: str, hint: str = "Fix it in the issue file.", *,
          shown: str | None = None) -> IssueError:
    return IssueError(f"{where.at(key)}: {shown or key}: {problem}", hint)


def _req_str(data: dict[str, Any], key: str, where: _Where, label: str, allow_empty: bool = False) -> str:
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


def _opt_str(data: dict[str, Any], key: str, where: _Where, label: str) -> str | None:
    if data.get(key) is None:
        return None
    return _req_str(data, key, where, label)


_DATE_SHAPE = re.compile(r"^\s*\d{4}-\d{1,2}-\d{1,2}(?:[T ]|\s*$)")


def _when(value: Any, where: _Where, label: str) -> date | datetime | None:
    if value is None or isinstance(value, (date, datetime)):
        return value
    reason = ""
    if isinstance(value, str):
        try:
            return dates.parse_iso(value)
        except ValueError as exc:
            if _DATE_SHAPE.match(value):
                reason = f" ({exc})"  # 2026-13-01: "month must be in 1..12"
    raise _fail(where, label, f"{value!r} is not a date{reason}",
                "Write dates as 2025-12-17 or 2025-12-17T09:30:00+01:00.")


def _check_keys(data: dict[str, Any], allowed: tuple[str, ...], where: _Where, label: str) -> None:
    for key in data:
        if key not in allowed:
            raise _fail(where, f"{label}{key}", "unknown key", f"Remove it; allowed keys: {', '.join(allowed)}.")


def _check_link(link: str, where: _Where, label: str) -> None:
    if not re.match(r"^https?://[^\s/]+", link, re.I):
        raise _fail(where, label, f"{link!r} is not an http(s) link", "Use a full address starting with https://.")


def _issue_from(front: dict[str, Any], body: str, issue_id: str, where: _Where) -> Issue:
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
            raise _fail(where, label, "has no items", "Add items or remove the section.",
                         shown=f"{label} ({heading})")
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
