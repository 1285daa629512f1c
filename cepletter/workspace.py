"""Making a new workspace from the sample files shipped inside the package."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from cepletter.errors import WorkspaceError
from cepletter.fsutil import write_new_text

# (name inside cepletter/sample, name in the new workspace). The workspace's
# .gitignore is shipped as "gitignore" so that it does not act on the package.
SAMPLE_FILES: tuple[tuple[str, str], ...] = (
    ("cepletter.toml", "cepletter.toml"),
    ("news.xml", "news.xml"),
    ("subscribers.csv", "subscribers.csv"),
    ("suppressed.csv", "suppressed.csv"),
    ("gitignore", ".gitignore"),
)
FOLDERS = ("issues",)
JOURNAL_EXAMPLE = "issues/2025-12/send-log.jsonl"  # where a delivery journal lives, for .gitignore checks


@dataclass
class InitResult:
    root: Path
    created: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)


def sample_text(name: str) -> str:
    """The text of one of the packaged sample files."""
    return resources.files("cepletter").joinpath("sample", name).read_text(encoding="utf-8")


def ignored_journal_rule(root: Path) -> tuple[Path, int] | None:
    """The line of ``root/.gitignore`` that makes git ignore the delivery journals, if one does.

    Workspaces made before the journal was kept in git have one; with it, `git clean -X`
    or a fresh clone loses the record of who already has an issue.
    """
    path = root / ".gitignore"
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for number, line in enumerate(lines, start=1):
        rule = line.strip()
        if not rule or rule.startswith(("#", "!")):
            continue
        rule = rule.lstrip("/")
        if fnmatch.fnmatchcase(JOURNAL_EXAMPLE, rule) or fnmatch.fnmatchcase(JOURNAL_EXAMPLE.rsplit("/", 1)[1], rule):
            return path, number
    return None


def init_workspace(target: Path) -> InitResult:
    """Create ``target`` as a workspace; existing files are kept as they are."""
    if target.exists() and not target.is_dir():
        raise WorkspaceError(f"{target} exists and is not a folder", "Choose another name for the workspace.")
    result = InitResult(root=target)
    try:
        target.mkdir(parents=True, exist_ok=True)
        for folder in FOLDERS:
            path = target / folder
            if path.is_dir():
                result.kept.append(path)
            elif path.exists():
                raise WorkspaceError(f"{path} exists and is not a folder", "Move it away and run init again.")
            else:
                path.mkdir()
                result.created.append(path)
        for packaged, name in SAMPLE_FILES:
            path = target / name
            if write_new_text(path, sample_text(packaged)):
                result.created.append(path)
            else:
                result.kept.append(path)
    except OSError as exc:
        where = exc.filename or target
        raise WorkspaceError(f"{where}: cannot create: {exc.strerror}", "Check the folder's permissions.") from None
    return result
