"""`cepletter bounces`: returned mail back into the list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cepletter.cli.env import Env, escape, pass_env

if TYPE_CHECKING:
    from cepletter.deliver.bounces import Report

_COLUMNS = (("delivered", "delivered"), ("hard", "hard"), ("soft", "soft"), ("unsubscribed", "unsubscribed"),
            ("auto_replies", "auto-replies"), ("refused", "refused"), ("not_understood", "not understood"))


@click.command("bounces")
@click.option("--maildir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Read this local Maildir instead of the IMAP folder of [bounces].")
@click.option("--mbox", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Read this mbox file instead of the IMAP folder of [bounces].")
@click.option("--move-to", metavar="FOLDER",
              help="Move each message dealt with into FOLDER (IMAP or Maildir); mail is never deleted.")
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing, mark nothing read.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_env
def bounces(env: Env, maildir: Path | None, mbox: Path | None, move_to: str | None, dry_run: bool,
            as_json: bool) -> None:
    """Read returned mail: bounces and unsubscribe requests go into suppressed.csv.

    Hard bounces (5.x.x: the address does not exist) and unsubscribe replies
    are suppressed at once; soft bounces (4.x.x, a full mailbox) are counted,
    and suppress an address after [bounces] soft_limit consecutive issues;
    auto-replies are ignored; anything else is listed as "not understood"
    and left unread. Each message is read once (bounces.json remembers).

    \b
    Examples:
      cepletter bounces                        # the IMAP folder of [bounces]
      cepletter bounces --dry-run
      cepletter bounces --maildir ~/Maildir/.Bounces --move-to Done
      cepletter bounces --mbox returned.mbox --json
    """
    from cepletter.deliver.bounces import process
    from cepletter.deliver.mailbox import open_source

    if maildir is not None and not maildir.is_absolute():
        maildir = env.cwd / maildir
    if mbox is not None and not mbox.is_absolute():
        mbox = env.cwd / mbox
    source = open_source(env.settings, maildir=maildir, mbox=mbox, move_to=move_to, readonly=dry_run)
    report = process(env.settings, source, dry_run=dry_run, move_to=move_to)
    for note in report.notes:
        env.warn(note)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    elif env.out().is_terminal:
        _tables(env, report)
    else:
        _lines(report)
    name = env.settings.delivery.suppressed
    verb = "would add" if dry_run else "added"
    env.info(f"Read {report.read:,} new message(s) from {report.source}; {verb} {len(report.added):,} "
             f"to {name}." + (" Dry run: nothing changed." if dry_run else ""))


def _issue(name: str) -> str:
    return name or "—"


def _lines(report: Report) -> None:
    """Piped: one line per thing, easy to grep."""
    for issue, counts in report.issues.items():
        values = ", ".join(f"{label} {getattr(counts, key)}" for key, label in _COLUMNS)
        click.echo(f"issue {_issue(issue)}: {values}")
    word = "would suppress" if report.dry_run else "suppressed"
    for entry in report.added:
        click.echo(f"{word}\t{entry.email}\t{entry.reason}\t{_issue(entry.issue)}\t{entry.reply}")
    for finding in report.attention():
        click.echo(f"{finding.kind}\t{finding.key}\t{finding.email or finding.sender or '-'}\t"
                   f"{finding.note or finding.detail}\t{finding.subject}")


def _tables(env: Env, report: Report) -> None:
    from rich.table import Table

    out = env.out()
    table = Table(title="Returned mail by issue", title_justify="left")
    table.add_column("issue")
    for _, label in _COLUMNS:
        table.add_column(label, justify="right")
    for issue, counts in report.issues.items():
        table.add_row(_issue(issue), *(f"{getattr(counts, key):,}" for key, _ in _COLUMNS))
    if report.issues:
        out.print(table)
    else:
        out.print("No new returned mail.")
    if report.added:
        added = Table(title="Would be added to suppressed.csv" if report.dry_run else "Added to suppressed.csv",
                      title_justify="left")
        for column in ("address", "reason", "issue", "reply"):
            added.add_column(column)
        for entry in report.added:
            added.add_row(escape(entry.email), escape(entry.reason), _issue(entry.issue), escape(entry.reply))
        out.print(added)
    attention = report.attention()
    if attention:
        look = Table(title="Needs a look (left unread)", title_justify="left")
        for column in ("message", "kind", "address", "why", "subject"):
            look.add_column(column)
        for f in attention:
            look.add_row(escape(f.key), f.kind, escape(f.email or f.sender or "-"), escape(f.note or f.detail),
                         escape(f.subject))
        out.print(look)
