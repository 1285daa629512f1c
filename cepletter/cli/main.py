"""The command group: global options, error handling, and the registered commands.

This is the only place where errors become exit codes, all of them from
`ExitStatus`: a CepletterError is one line on stderr and its status (1, or 2
for usage errors); Ctrl-C is 130; anything else is an internal error, shown
with a traceback only under --debug.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from cepletter import __version__
from cepletter.cli import bounces, compose, deliver, desk, publish, review
from cepletter.cli.env import Env
from cepletter.errors import ExitStatus

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}




def _printable(text: str) -> str:
    """``text`` without control characters: messages quote feeds, lists and servers, which could
    otherwise move the cursor, recolour or clear the user's terminal."""
    return "".join(c if c in "\t\n" or not (ord(c) < 32 or 127 <= ord(c) < 160) else "\ufffd" for c in text)


def _print_error(message: str, hint: str | None) -> None:
    click.echo(f"Error: {_printable(message)}", err=True)
    if hint:
        click.echo(f"  {_printable(hint)}", err=True)


class CepletterGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        from cepletter.errors import CepletterError

        try:
            return super().invoke(ctx)
        except CepletterError as exc:
            if _debug(ctx):
                import traceback

                traceback.print_exc()
            _print_error(exc.message, exc.hint)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(ExitStatus.INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except BrokenPipeError:
            # Output piped into `head` and the like: not an error.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(ExitStatus.SUCCESS)
        except Exception as exc:
            if _debug(ctx):
                raise
            _print_error(
                f"unexpected internal error: {type(exc).__name__}: {exc}",
                "This is a bug in cepletter. Run again with --debug and report the traceback.",
            )
            ctx.exit(ExitStatus.ERROR)


def _debug(ctx: click.Context) -> bool:
    env = ctx.find_object(Env)
    return bool(env and env.debug)


@click.group(cls=CepletterGroup, context_settings=CONTEXT_SETTINGS)
@click.option(
    "-C",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run as if started in DIR (the workspace folder).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks for errors (never shows passwords).")
@click.version_option(__version__, "-V", "--version", prog_name="cepletter")
@click.pass_context
def cli(ctx: click.Context, directory: Path | None, debug: bool) -> None:
    """Compose, preview and send an email newsletter from your website's feed.

    \b
    A typical issue:
      cepletter init my-newsletter && cd my-newsletter
      cepletter items                  # what is new since the last issue
      cepletter draft --pick 3,1,2     # write issues/<ID>/issue.md
      cepletter preview --open         # look at exactly what subscribers get
      cepletter send --test me@example.org
      cepletter send                   # to the list, after a confirmation
    """
    if directory is not None and not directory.is_dir():
        raise click.BadParameter(f"{directory} is not a folder", param_hint="-C")
    if isinstance(ctx.obj, Env):  # handed in by a test, which says what is a terminal
        ctx.obj.directory, ctx.obj.debug = directory, debug
    else:
        ctx.obj = Env(directory, debug)


def main() -> None:
    cli(prog_name="cepletter")


for command in (compose.init, compose.items, compose.draft, review.preview, review.check, deliver.send,
                deliver.export_cmd, publish.archive, publish.approve):
    cli.add_command(command)
cli.add_command(desk.desk)
cli.add_command(bounces.bounces)
