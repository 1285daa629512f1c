"""The issues folder: where each issue lives, which issues there are, and which ID is free.

Kept apart from the issue file's YAML so that listing issues (every `items`
run does) does not load a YAML parser.
"""

from __future__ import annotations

import re
from pathlib import Path

from cepletter.errors import IssueError

ISSUE_FILE = "issue.md"
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def issue_path(issues_dir: Path, issue_id: str) -> Path:
    if not ID_PATTERN.match(issue_id):
        raise IssueError(f"{issue_id!r} is not a valid issue ID", "Use letters, digits, '-', '_' or '.', like 2025-12.")
    return issues_dir / issue_id / ISSUE_FILE


def list_issue_ids(issues_dir: Path) -> list[str]:
    """IDs of the issues present, oldest first (IDs sort by date: 2025-10 < 2025-12)."""
    if not issues_dir.is_dir():
        return []
    return sorted(p.parent.name for p in issues_dir.glob(f"*/{ISSUE_FILE}"))


def earlier_issue_ids(issues_dir: Path, issue_id: str) -> list[str]:
    """IDs of the issues before ``issue_id``, oldest first."""
    return [i for i in list_issue_ids(issues_dir) if i < issue_id]


def latest_issue_id(issues_dir: Path) -> str:
    ids = list_issue_ids(issues_dir)
    if not ids:
        raise IssueError(f"no issues in {issues_dir}", "Make one with `cepletter draft`.")
    return ids[-1]


def new_issue_path(root: Path, issues_dir: Path, issue_id: str, *, force: bool) -> Path:
    """Where a new issue ``issue_id`` goes; an error when one is there, unless ``force``."""
    path = issue_path(issues_dir, issue_id)
    if path.exists() and not force:
        shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        raise IssueError(f"{shown} already exists",
                         "Use --force to replace it (a copy is kept as issue.md.bak), or --issue ID for a new issue.")
    return path
