"""Commands that deliver: send, export."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from cepletter.cli.env import Env, pass_env
from cepletter.errors import ExitStatus

if TYPE_CHECKING:
    from cepletter.deliver.send import Job
    from cepletter.deliver.sender import Result, Summary
    from cepletter.message.personal import PersonalIssue
    from cepletter.message.subscribers import Invalid


def _render(env: Env, issue_id: str | None) -> tuple[PersonalIssue, Path]:
    from cepletter.issue.file import resolve
    from cepletter.message.personal import render_personal

    issue = resolve(env.settings.issues_dir, issue_id)
    return render_personal(env.settings, issue, cache=True, reuse=True), issue.folder


def _report_invalid(env: Env, invalid: list[Invalid]) -> None:

    name = env.settings.delivery.subscribers
    for row in invalid:
        shown = repr(row.value) if row.value else "(empty)"
        env.warn(f"{name}, line {row.line}: {shown} skipped: {row.reason}")


@click.command()
@click.argument("issue_id", metavar="[ID]", required=False)
@click.option("--test", "tests", metavar="ADDR", multiple=True,
              help="Send only to ADDR (repeatable), subject prefixed [TEST]; not journaled.")
@click.option("--dry-run", is_flag=True, help="Build every message and report counts; send nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), metavar="R",
              help="Messages per second, all connections together (default: [delivery] rate).")
@click.option("--connections", type=click.IntRange(1, 50), metavar="N",
              help="Parallel SMTP connections (default: [delivery] connections).")
@click.option("--unreviewed", is_flag=True,
              help="Send over SMTP although nobody approved or test-sent this content.")
@pass_env
def send(env: Env, issue_id: str | None, tests: tuple[str, ...], dry_run: bool, yes: bool,
         rate: float | None, connections: int | None, unreviewed: bool) -> None:
    """Send an issue (default: the latest) to the list, or a test to a few addresses.

    Every subscriber not suppressed and not yet delivered gets one message;
    each result is recorded in issues/<ID>/send-log.jsonl, so an interrupted
    or repeated send carries on where it stopped and never mails anyone twice.

    \b
    Examples:
      cepletter send --test me@example.org --test colleague@example.org
      cepletter send --dry-run
      cepletter send                 # asks before sending
      cepletter send 2025-12 --yes --rate 20 --connections 4
    """
    from cepletter.errors import UsageError

    if tests and (dry_run or unreviewed or rate or connections):
        raise UsageError("--test cannot be combined with --dry-run, --unreviewed, --rate or --connections")
    rendered, folder = _render(env, issue_id)
    if tests:
        _send_test(env, rendered, tests)
        return
    _send_list(env, rendered, folder, dry_run=dry_run, yes=yes, rate=rate, connections=connections,
               unreviewed=unreviewed)


def _send_test(env: Env, rendered: PersonalIssue, tests: tuple[str, ...]) -> None:
    from cepletter.deliver.send import send_test, test_addresses
    from cepletter.deliver.transports import make_transport

    addresses = test_addresses(tests)
    where = make_transport(env.settings).description
    summary = send_test(env.settings, rendered, addresses)
    sent = [r.email for r in addresses if r.email not in {f.email for f in summary.failures}]
    if sent:
        env.info(f"Test of issue {rendered.issue_id} sent to {', '.join(sent)} ({where}).")
    for failure in summary.failures:
        env.warn(f"{failure.email}: {failure.status}: {failure.reply}")
    if summary.failures:
        raise click.exceptions.Exit(ExitStatus.ERROR)


def _confirm(env: Env, job: Job, yes: bool) -> None:
    from cepletter.errors import UsageError

    c = job.counts
    o = job.options
    pace = f", {o.connections} connection(s), {o.rate:g} messages/s" if o.rate else ""
    lines = [
        f"Issue:      {job.rendered.issue_id}",
        f"Subject:    {job.factory.subject}",
        f"From:       {job.settings.newsletter.from_}",
        f"Transport:  {job.transport.description}{pace}",
    ]
    if job.signoff is not None:
        lines.append(f"Reviewed:   {job.signoff.describe()}")
    elif job.unreviewed:
        lines.append("Reviewed:   NO (--unreviewed)")
    lines.append(
        f"Recipients: {c.to_send:,} (list rows {c.rows:,}: {c.already_sent:,} already sent, "
        f"{c.suppressed:,} suppressed, {c.duplicates:,} duplicates, {c.invalid:,} invalid)"
    )
    for line in lines:
        env.info(line)
    if yes:
        return
    if not env.stdin_is_terminal():
        raise UsageError("not sending without a confirmation, and there is no terminal to ask on",
                         "Add --yes to send without asking.")
    if not click.confirm(f"Send to {c.to_send:,} recipients now?", default=False, err=True):
        env.info("Nothing sent.")
        raise click.exceptions.Exit(ExitStatus.ERROR)


def _send_list(env: Env, rendered: PersonalIssue, folder: Path, *, dry_run: bool, yes: bool,
               rate: float | None, connections: int | None, unreviewed: bool) -> None:
    from cepletter.deliver.send import build_all, prepare

    job = prepare(env.settings, rendered, folder, dry_run=dry_run, unreviewed=unreviewed,
                  rate=rate, connections=connections)
    try:
        _report_invalid(env, job.invalid)
        if dry_run:
            messages, size = build_all(job)
            env.info(f"Dry run: built {messages:,} messages ({size / 1e6:.1f} MB) for "
                         f"{job.transport.description}; nothing sent.")
            _print_table(env, job, None)
            return
        if job.counts.to_send == 0:
            env.info(f"Nothing to send: no subscriber of issue {rendered.issue_id} is still waiting for it.")
            _print_table(env, job, None)
            return
        _confirm(env, job, yes)
        summary = _run_with_progress(env, job)
    finally:
        job.release()
    _print_table(env, job, summary)
    if summary.interrupted:
        env.info(f"Interrupted: {summary.sent:,} sent before stopping. "
                     "Run `cepletter send` again to carry on.")
        raise click.exceptions.Exit(ExitStatus.INTERRUPTED)
    if summary.failed or summary.deferred:
        env.info("Not everyone got the issue. Run `cepletter send` again to retry the failed "
                     "and deferred addresses (those already sent are skipped).")
        raise click.exceptions.Exit(ExitStatus.ERROR)


def _run_with_progress(env: Env, job: Job) -> Summary:
    from cepletter.deliver.send import run

    total = job.counts.to_send
    if not env.stderr_is_terminal():
        summary = run(job)
        rate = summary.done / summary.elapsed if summary.elapsed else 0.0
        env.info(f"Sent {summary.sent:,} of {total:,} in {summary.elapsed:.1f} s ({rate:.0f} messages/s).")
        return summary
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("Sending"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=env.err(), transient=False) as bar:
        task = bar.add_task("send", total=total)

        def advance(_result: Result) -> None:
            bar.advance(task)

        return run(job, advance)


def _print_table(env: Env, job: Job, summary: Summary | None) -> None:
    from rich.box import HEAVY_HEAD
    from rich.table import Table

    c = job.counts
    skipped = c.already_sent + c.suppressed + c.duplicates + c.invalid
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("detail")
    if summary is None:
        table.add_row("to send", f"{c.to_send:,}", "")
    else:
        table.add_row("delivered", f"{summary.sent:,}", "")
        table.add_row("failed", f"{summary.failed:,}", "")
        table.add_row("deferred", f"{summary.deferred:,}", "")
    table.add_row("skipped", f"{skipped:,}",
                  f"{c.already_sent:,} already sent, {c.suppressed:,} suppressed, "
                  f"{c.duplicates:,} duplicates, {c.invalid:,} invalid")
    out = env.out()
    out.print(table)
    if summary is not None and summary.failures:
        # Piped output stays plain: one line per address, easy to grep.
        failures = Table(title="Not delivered", title_justify="left", box=None if not out.is_terminal else HEAVY_HEAD)
        failures.add_column("address")
        failures.add_column("status")
        failures.add_column("server reply")
        for result in summary.failures:
            failures.add_row(result.email, result.status, result.reply)
        out.print(failures)


@click.command("export")
@click.argument("issue_id", metavar="[ID]", required=False)
@click.option("--format", "-f", "fmt", required=True,
              type=click.Choice(["html", "txt", "eml", "mbox", "zip"]),
              help="html/txt: the web version; eml: one message any mail client opens; "
                   "mbox: every subscriber's message; zip: HTML, text and local images.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write (default: issues/<ID>/build/<ID>.<format>); '-' for stdout (html, txt, eml).")
@pass_env
def export_cmd(env: Env, issue_id: str | None, fmt: str, output: Path | None) -> None:
    """Write an issue (default: the latest) as a hand-off file.

    \b
    Examples:
      cepletter export --format eml           # open it in Thunderbird, Outlook or Apple Mail
      cepletter export --format zip -o december.zip
      cepletter export --format html -o - | less
    """
    import sys

    from cepletter.errors import UsageError
    from cepletter.publish.export import export

    to_stdout = output is not None and str(output) == "-"
    if to_stdout and fmt in ("mbox", "zip"):
        raise UsageError(f"--format {fmt} cannot be written to stdout", "Give a file with -o PATH.")
    rendered, folder = _render(env, issue_id)
    if output is not None and not to_stdout and not output.is_absolute():
        output = env.cwd / output

    def write_stdout(data: bytes) -> None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()

    result = export(env.settings, rendered, folder, fmt, None if to_stdout else output,
                    write_stdout if to_stdout else None)
    _report_invalid(env, result.invalid)
    for warning in result.warnings:
        env.warn(warning)
    if result.path is not None:
        extra = ""
        if fmt == "mbox":
            extra = f", {result.messages:,} messages"
        elif fmt == "zip":
            extra = f", {len(result.images)} image(s)"
        env.info(f"Wrote {result.path} ({result.size:,} bytes{extra}).")
