"""Making a new workspace from the sample files shipped inside the package."""

from __future__ import annotations

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


@dataclass
class InitResult:
    root: Path
    created: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)


def sample_text(name: str) -> str:
    """The text of one of the packaged sample files."""
    return resources.files("cepletter").joinpath("sample", name).read_text(encoding="utf-8")


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
