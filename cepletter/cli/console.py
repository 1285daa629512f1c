"""The two consoles: data to stdout, messages and progress to stderr.

rich is imported only when a console is first used, so `--help` stays fast.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console


@functools.cache
def out() -> Console:
    from rich.console import Console

    # No file=: rich then looks up sys.stdout on every write, so a swapped
    # stream (tests, redirection) is honoured even though the console is cached.
    return Console(highlight=False, soft_wrap=True)


@functools.cache
def err() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty() and os.environ.get("TERM") != "dumb"


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty() and os.environ.get("TERM") != "dumb"


def info(message: str) -> None:
    """A plain message on stderr (no markup interpretation)."""
    err().print(message, markup=False)


def warn(message: str) -> None:
    con = err()
    if con.is_terminal:
        con.print(f"[yellow]warning:[/] {escape(message)}")
    else:
        con.print(f"warning: {message}", markup=False)


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)
