"""Inlined pages kept on disk, so that `send` after `preview` does not inline again.

Inlining (premailer) is the slow step of a render, both to load and to run. Its result depends only on the page Jinja produced (and on
the inliner's and the line layout's code: the page is kept laid out in lines), so it is kept under the workspace's cache folder, keyed
by a hash of both. The placeholder tokens carry a random salt per render; the
salt is taken out of the key and the stored page and put back on the way out,
so a later render of the same content finds the stored page.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable
from pathlib import Path

from cepletter import __version__
from cepletter.fsutil import atomic_write_text, prune_oldest

_FOLDER = "inlined"
_KEEP = 16  # a few issues and their edits; older pages are removed
_NEUTRAL = "cepslot\x00"


def code_files() -> list[Path]:
    """The code an inlined page depends on, found from the modules themselves.

    Named by module, not by file name, so that a moved or renamed module cannot
    silently drop out of the key: the import fails instead.
    """
    from cepletter.render import inliner, linewrap

    return [Path(module.__file__ or "") for module in (inliner, linewrap)]


def _code_fingerprint() -> bytes:
    parts = [__version__.encode()]
    parts.extend(path.read_bytes() for path in code_files())
    parts.extend(installed(name) for name in ("premailer", "cssutils", "lxml"))
    return b"\0".join(parts)


def installed(package: str) -> bytes:
    """What identifies the installed copy of ``package`` (found, not imported: that takes time).

    Installing another version rewrites its files, so their size and time change.
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        return f"{package} -".encode()
    try:
        stat = Path(spec.origin).stat()
    except OSError:
        return f"{package} {spec.origin}".encode()
    return f"{package} {spec.origin} {stat.st_size} {stat.st_mtime_ns}".encode()


def inline_cached(page: str, salt: str, folder: Path | None, inline: Callable[[str], str]) -> tuple[str, bool]:
    """``inline(page)``, from the cache when it has it; returns (result, whether it was cached)."""
    marker = f"cepslot{salt}"
    if folder is None or "\x00" in page:
        return inline(page), False
    neutral = page.replace(marker, _NEUTRAL)
    key = hashlib.sha256(_code_fingerprint() + b"\0" + neutral.encode("utf-8", "surrogatepass")).hexdigest()
    path = folder / _FOLDER / f"{key[:40]}.html"
    try:
        return path.read_text(encoding="utf-8").replace(_NEUTRAL, marker), True
    except (OSError, UnicodeDecodeError):
        pass
    result = inline(page)
    with contextlib.suppress(OSError):  # a cache that cannot be written only costs time
        atomic_write_text(path, result.replace(marker, _NEUTRAL), fsync=False)
        prune_oldest(path.parent, "*.html", _KEEP)
    return result, False
