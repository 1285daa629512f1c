"""Commands that make content: init, items, draft."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cepletter.cli.env import Env, pass_env

if TYPE_CHECKING:
    from cepletter.config import Settings
    from cepletter.issue.draft import Window
    from cepletter.sources.items import Item


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@pass_env
def init(env: Env, directory: Path | None) -> None:
    """Make a new workspace with working settings and sample content.

    Creates cepletter.toml, a sample news feed (news.xml), subscribers.csv,
    suppressed.csv and issues/ in DIRECTORY (default: the current folder).
    Existing files are never overwritten.

    \b
    Example:
      cepletter init my-newsletter
      cd my-newsletter && cepletter draft --all
    """
    from cepletter.workspace import init_workspace

    target = directory if directory is not None else env.cwd
    if directory is not None and env.directory is not None and not directory.is_absolute():
        target = env.directory / directory
    result = init_workspace(target)
    for path in result.created:
        env.info(f"created  {_shown(path, target)}")
    for path in result.kept:
        env.info(f"kept     {_shown(path, target)} (already there, not changed)")
    if result.created:
        env.info(f"Workspace ready in {target}. Next: cepletter items, then cepletter draft.")
    else:
        env.info(f"Nothing to do: {target} already has every workspace file.")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _shown(path: Path, root: Path) -> str:
    name = path.relative_to(root).as_posix()
    return f"{name}/" if path.is_dir() else name


def _window_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by items and draft: the numbers match for the same options."""
    options = [
        click.option("--since", metavar="DATE", help="Only items from this day on (YYYY-MM-DD)."),
        click.option("--days", type=int, metavar="N", help="Only items from the last N days."),
        click.option("--source", "source_names", multiple=True, metavar="NAME",
                     help="Only this source of cepletter.toml (repeatable)."),
        click.option("--feed", "feeds", multiple=True, metavar="URL_OR_PATH",
                     help="Read this feed instead of the configured sources (repeatable)."),
        click.option("--all-items", is_flag=True,
                     help="Also items used in earlier issues or older than the last one."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _settings(env: Env, feeds: tuple[str, ...]) -> Settings | None:
    """The workspace settings; with --feed a workspace is optional."""
    from cepletter.errors import WorkspaceError

    try:
        return env.settings
    except WorkspaceError:
        if feeds:
            return None
        raise


def _gather(env: Env, settings: Settings | None, issue_id: str, since: str | None, days: int | None,
            source_names: tuple[str, ...], feeds: tuple[str, ...], all_items: bool) -> tuple[list[Item], Window]:
    from cepletter.issue import draft as compose
    from cepletter.sources.reader import read_items

    since_at = compose.parse_since(since, settings) if since is not None else None
    sources = compose.select_sources(settings, source_names, feeds, env.cwd)
    # --all-items lists everything: the window of the last issue does not apply either.
    win = compose.window(settings, issue_id, since=since_at, days=days, all_items=all_items)
    if all_items and since is None and days is None:
        win.since = None
        win.reason = "no date limit"
    items = read_items(sources, settings, warn=env.warn)
    return compose.candidates(items, win), win


def _date_text(item: Item, settings: Settings | None) -> str:
    from cepletter.issue.draft import zone

    return item.date.astimezone(zone(settings)).date().isoformat() if item.date else ""


def _print_items(env: Env, items: list[Item], settings: Settings | None, *, to_stderr: bool = False) -> None:

    on_terminal = env.stderr_is_terminal() if to_stderr else env.stdout_is_terminal()
    if not on_terminal:
        # One tab-separated line per item, for scripts: number, date, source, category, title.
        lines = []
        for number, item in enumerate(items, start=1):
            fields = (str(number), _date_text(item, settings), item.source, item.category or "", item.title)
            lines.append("\t".join(" ".join(f.split()) for f in fields))
        if lines:
            click.echo("\n".join(lines), err=to_stderr)
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("#", justify="right", style="bold")
    table.add_column("Date", no_wrap=True)
    table.add_column("Source", no_wrap=True)
    table.add_column("Category")
    table.add_column("Title")
    for number, item in enumerate(items, start=1):
        table.add_row(str(number), _date_text(item, settings) or "undated", item.source,
                      item.category or "", item.title, end_section=False)
    (env.err() if to_stderr else env.out()).print(table)


@click.command()
@_window_options
@pass_env
def items(env: Env, since: str | None, days: int | None, source_names: tuple[str, ...],
          feeds: tuple[str, ...], all_items: bool) -> None:
    """List the candidate items for the next issue, numbered, newest first.

    By default: the items newer than the latest earlier issue (all items when
    there is none), without those already used in an earlier issue. The
    numbers are the ones `cepletter draft --pick` takes for the same options.
    Piped, it prints one tab-separated line per item: number, date, source,
    category, title.

    \b
    Examples:
      cepletter items
      cepletter items --days 60
      cepletter items --feed https://www.cep-probation.org/feed/
    """
    from cepletter.issue.draft import default_issue_id, today

    settings = _settings(env, feeds)
    found, win = _gather(env, settings, default_issue_id(today(settings)), since, days,
                         source_names, feeds, all_items)
    _print_items(env, found, settings)
    left_out = "; items of earlier issues left out" if win.used else ""
    click.echo(f"{_count(len(found), 'item')} ({win.reason}{left_out}).", err=True)


@click.command()
@click.option("--issue", "issue_id", metavar="ID", help="The issue's ID (default: this year-month, e.g. 2025-12).")
@click.option("--pick", metavar="NUMBERS", help="Items to include, in this order: 3,1,5-7.")
@click.option("--all", "pick_all", is_flag=True, help="Include every candidate item, newest first.")
@_window_options
@click.option("--title", metavar="TEXT", help='The issue\'s title (default: "Newsletter <Month> <Year>").')
@click.option("--intro", metavar="TEXT",
              help="The editorial intro, in Markdown.  [default: a placeholder to replace; check and send refuse it]")
@click.option("--date", "issue_date", metavar="DATE",
              help="The issue's date, YYYY-MM-DD; its events section covers two months from it.  [default: today]")
@click.option("--force", count=True,
              help="Replace an existing issue file, keeping it as issue.md.bak; twice if it has been sent.")
@pass_env
def draft(env: Env, issue_id: str | None, pick: str | None, pick_all: bool, since: str | None,
          days: int | None, source_names: tuple[str, ...], feeds: tuple[str, ...], all_items: bool,
          title: str | None, intro: str | None, issue_date: str | None, force: int) -> None:
    """Write issues/<ID>/issue.md from the chosen items, in the order chosen.

    Numbers are those `cepletter items` shows for the same options. Without
    --pick or --all, on a terminal the list is shown and you are asked.
    Items are grouped into sections by category; edit the file afterwards to
    write the intro, reorder, or rename sections. --force replaces an
    existing issue file and keeps the old one as issue.md.bak (then
    issue.md.bak.2, ...); an issue that has been sent needs --force twice.

    \b
    Examples:
      cepletter draft --pick 3,1,5-7
      cepletter draft --all --issue 2026-02 --title "Newsletter February 2026"
    """
    from cepletter.deliver.journal import JOURNAL_NAME, sent_keys
    from cepletter.errors import IssueError, UsageError
    from cepletter.issue import draft as compose
    from cepletter.issue.folder import issue_path

    if pick is not None and pick_all:
        raise UsageError("--pick and --all cannot be used together", "Give one of them.")
    settings = env.settings
    day = compose.parse_day(issue_date, "--date") if issue_date else compose.today(settings)
    issue_id = issue_id or compose.default_issue_id(day)
    sent = len(sent_keys(issue_path(settings.issues_dir, issue_id).parent / JOURNAL_NAME))
    compose.replaceable_path(settings, issue_id, force=force, sent=sent)
    if pick is None and not pick_all and not env.stdin_is_terminal():
        raise UsageError("choose the items with --pick 3,1,5-7 or --all",
                         "Run `cepletter items` to see the numbers, or run draft in a terminal to choose.")
    found, win = _gather(env, settings, issue_id, since, days, source_names, feeds, all_items)
    if not found:
        raise IssueError(f"no items to draft ({win.reason}" + (", earlier issues' items left out)" if win.used else ")"),
                         "Widen the window with --days N or --since DATE, or use --all-items.")
    if pick_all:
        numbers = list(range(1, len(found) + 1))
    else:
        if pick is None:
            _print_items(env, found, settings, to_stderr=True)
            pick = click.prompt("Items to include, in order (e.g. 3,1,5-7)", err=True)
        numbers = compose.parse_pick(pick, len(found))
    chosen = [found[n - 1] for n in numbers]
    issue = compose.build_issue(chosen, issue_id=issue_id, issue_date=day, settings=settings, title=title,
                                intro=intro)
    compose.add_events(settings, issue, warn=env.warn)
    backups: list[Path] = []
    written = compose.save_draft(settings, issue, force=force > 0, on_backup=backups.append)
    shown = written.relative_to(settings.root).as_posix()
    for backup in backups:
        env.info(f"Kept the previous {written.name} as {backup.relative_to(settings.root).as_posix()}.")
    events = f", {_count(len(issue.events), 'event')}" if issue.events else ""
    env.info(f"Wrote {shown}: {_count(len(chosen), 'item')} in {_count(len(issue.sections), 'section')}{events}.")
    env.info("Next: `cepletter preview`." if intro else "Next: write the intro in that file, then `cepletter preview`.")
