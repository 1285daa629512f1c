"""What every command gets: the workspace, --debug, and the two consoles.

Data goes to stdout, messages and progress to stderr (httpie's split). Tests
hand the group their own ``Env`` (``obj=``) to say what is a terminal, instead
of patching module state. rich is imported only when a console is first used,
so `--help` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.console import Console

    from cepletter.config import Settings


def _is_terminal(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


class Env:
    """The workspace folder, --debug, which streams are terminals, and the consoles.

    ``stdin_terminal`` and friends are None to ask the streams themselves (the
    normal case); a test sets them to say what it pretends.
    """

    def __init__(self, directory: Path | None = None, debug: bool = False, *,
                 stdin_terminal: bool | None = None, stdout_terminal: bool | None = None,
                 stderr_terminal: bool | None = None) -> None:
        self.directory = directory
        self.debug = debug
        self._stdin_terminal = stdin_terminal
        self._stdout_terminal = stdout_terminal
        self._stderr_terminal = stderr_terminal
        self._settings: Settings | None = None
        self._out: Console | None = None
        self._err: Console | None = None

    @property
    def cwd(self) -> Path:
        return self.directory or Path.cwd()

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from cepletter.config import find_workspace, load_settings

            self._settings = load_settings(find_workspace(self.cwd))
        return self._settings

    # ------------------------------------------------------------ terminals and consoles

    def stdin_is_terminal(self) -> bool:
        if self._stdin_terminal is not None:
            return self._stdin_terminal
        return bool(sys.stdin.isatty())

    def stdout_is_terminal(self) -> bool:
        return self._stdout_terminal if self._stdout_terminal is not None else _is_terminal(sys.stdout)

    def stderr_is_terminal(self) -> bool:
        return self._stderr_terminal if self._stderr_terminal is not None else _is_terminal(sys.stderr)

    def out(self) -> Console:
        if self._out is None:
            from rich.console import Console

            # No file=: rich then looks up sys.stdout on every write, so a swapped
            # stream (redirection, click's test runner) is honoured.
            self._out = Console(highlight=False, soft_wrap=True,
                                force_terminal=self._stdout_terminal)
        return self._out

    def err(self) -> Console:
        if self._err is None:
            from rich.console import Console

            self._err = Console(stderr=True, highlight=False, soft_wrap=True,
                                force_terminal=self._stderr_terminal)
        return self._err

    def info(self, message: str) -> None:
        """A plain message on stderr (no markup interpretation)."""
        self.err().print(message, markup=False)

    def warn(self, message: str) -> None:
        con = self.err()
        if con.is_terminal:
            con.print(f"[yellow]warning:[/] {escape(message)}")
        else:
            con.print(f"warning: {message}", markup=False)


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


pass_env = click.make_pass_decorator(Env)
