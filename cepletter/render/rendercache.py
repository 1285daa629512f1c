"""Rendered issues kept on disk, so that `send` after `preview` starts without rendering.

A render depends on the settings, the issue, the template files, cepletter's
own code and the libraries that render (Jinja, Markdown, the inliner, the
sanitiser). The key is a hash of all of them, so any change to any of them
makes a new key and a fresh render. What is kept is the issue cut into static
parts and per-recipient slots: the same for everyone, no subscriber data.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cepletter import __version__, i18n
from cepletter.fsutil import atomic_write_text, prune_oldest
from cepletter.render.inlinecache import installed
from cepletter.render.rendered import Escaper, SlotTemplate
from cepletter.render.slots import AttributeEscaper, escape_text, identity, raw_escape

if TYPE_CHECKING:
    from cepletter.config import Settings

FOLDER = "rendered"
_KEEP = 16
_FORMAT = 2
_LIBRARIES = ("jinja2", "markupsafe", "markdown_it", "mdurl", "premailer", "cssutils", "lxml", "nh3", "yaml", "babel")
_NAMED: dict[str, Escaper] = {"text": escape_text, "raw": raw_escape, "none": identity}


class Stored:
    """What a stored render holds: enough to rebuild the RenderedIssue."""

    def __init__(self, issue_id: str, subject: str, preheader: str, html: SlotTemplate, text: SlotTemplate,
                 language: str = "", untranslated: tuple[str, ...] = ()) -> None:
        self.issue_id = issue_id
        self.subject = subject
        self.preheader = preheader
        self.html = html
        self.text = text
        self.language = language
        self.untranslated = untranslated


def key(settings: Settings, issue: object, template_dirs: list[Path]) -> str:
    """A hash of everything a render depends on.

    Of the settings, a render reads the workspace folder and ``[newsletter]``
    only (a test holds it to that), so a new SMTP port or rate keeps the key.
    """
    digest = hashlib.sha256()

    def add(data: bytes) -> None:
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)

    read = repr((settings.root.resolve(), settings.newsletter))
    for text in (str(_FORMAT), __version__, sys.version, read, repr(issue)):
        add(text.encode("utf-8", "surrogatepass"))
    for path in sorted(code_files()):  # cepletter's own code: any edit makes a new key
        stat = path.stat()
        add(f"{path} {stat.st_size} {stat.st_mtime_ns}".encode())
    for folder in template_dirs:
        if folder.is_dir():
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                add(str(path).encode("utf-8", "surrogateescape"))
                add(path.read_bytes())
    for path in i18n.catalogue_files():  # the fixed texts in every language
        add(str(path).encode("utf-8", "surrogateescape"))
        add(path.read_bytes())
    for name in _LIBRARIES:
        add(installed(name))
    return digest.hexdigest()


def code_files() -> list[Path]:
    """Every code file of cepletter, in every stage folder: any edit makes a new key."""
    import cepletter

    return sorted(Path(cepletter.__file__).resolve().parent.rglob("*.py"))


def load(cache_dir: Path, render_key: str) -> Stored | None:
    """The stored render for ``render_key``; None when there is none or it cannot be read."""
    path = cache_dir / FOLDER / f"{render_key[:40]}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("key") != render_key:
            return None
        return Stored(
            str(data["issue_id"]), str(data["subject"]), str(data["preheader"]),
            _template(data["html"]), _template(data["text"]),
            str(data["language"]), tuple(str(text) for text in data["untranslated"]),
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def store(cache_dir: Path, render_key: str, stored: Stored) -> None:
    """Keep ``stored`` under ``render_key``; a cache that cannot be written only costs time."""
    try:
        data = {
            "key": render_key, "issue_id": stored.issue_id, "subject": stored.subject,
            "preheader": stored.preheader, "html": _plain(stored.html), "text": _plain(stored.text),
            "language": stored.language, "untranslated": list(stored.untranslated),
        }
    except LookupError:
        return  # an escaper this cache does not know: render every time
    path = cache_dir / FOLDER / f"{render_key[:40]}.json"
    with contextlib.suppress(OSError):
        atomic_write_text(path, json.dumps(data, ensure_ascii=False), fsync=False)
        prune_oldest(path.parent, "*.json", _KEEP)


def _plain(template: SlotTemplate) -> dict[str, Any]:
    return {"parts": list(template.parts), "slots": [[key, _spec(escape)] for key, escape in template.slots]}


def _spec(escape: Escaper) -> Any:
    if isinstance(escape, AttributeEscaper):
        return ["attr", escape.tag, escape.name, escape.prefix, escape.suffix, escape.fast_prefix, escape.fast_suffix]
    for name, known in _NAMED.items():
        if escape is known:
            return name
    raise LookupError(escape)


def _template(data: dict[str, Any]) -> SlotTemplate:
    parts = tuple(str(part) for part in data["parts"])
    slots = tuple((str(key), _escaper(spec)) for key, spec in data["slots"])
    if len(parts) != len(slots) + 1:
        raise ValueError("parts and slots do not match")
    return SlotTemplate(parts, slots)


def _escaper(spec: Any) -> Escaper:
    if isinstance(spec, str):
        return _NAMED[spec]
    if isinstance(spec, list) and len(spec) == 7 and spec[0] == "attr" and all(isinstance(v, str) for v in spec):
        return AttributeEscaper(*spec[1:])
    raise ValueError(f"unknown escaping {spec!r}")
