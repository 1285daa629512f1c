"""YAML front matter: the ``---`` block at the top of an issue file or a Markdown note.

One pattern for both, so a file that one reader accepts the other does too.
"""

from __future__ import annotations

import re

_FRONT = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)^---[ \t]*\r?\n?(.*)\Z", re.S | re.M)


def split_front_matter(text: str) -> tuple[str, str] | None:
    """(the YAML between the ``---`` lines, the body after them); None when there is no such block."""
    match = _FRONT.match(text)
    return (match.group(1), match.group(2)) if match else None
