"""Commands that deliver: send, export."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cepletter.cli.env import Env, pass_env
from cepletter.errors import ExitStatus

if TYPE_CHECKING:
    from cepletter.deliver.send import ListSend
    from cepletter.deliver.sender import Result, Summary
    from cepletter.message.personal import PersonalIssue
    from cepletter.message.subscribers import Invalid


def _render(env: Env, issue_id: str | None) -> tuple[PersonalIssue, Path]:
    from cepletter.issue.file import resolve
    from cepletter.message.personal import render_editions

    issue = resolve(env.settings.issues_dir, issue_id)
    return render_editions(env.settings, issue, cache=True, reuse=True), issue.folder


def _report_invalid(env: Env, invalid: list[Invalid]) -> None:

    name = env.settings.delivery.subscribers
    for row in invalid:
        shown = repr(row.value) if row.value else "(empty)"
        env.warn(f"{name}, line {row.line}: {shown} skipped: {row.reason}")


def _report_list(env: Env, job: ListSend) -> None:
    """What reading the lists and an earlier run's journal found, before the confirmation."""
    name = env.settings.delivery.subscribers
    recoded = job.counts.recoded
    if recoded:
        lines = ", ".join(str(n) for n in recoded[:10]) + (f" and {len(recoded) - 10:,} more" if len(recoded) > 10 else "")
        env.warn(f"{name}: line{'s' if len(recoded) > 1 else ''} {lines} not UTF-8 like the rest of the file; "
                 "the bytes that are not were read as Windows-1252 (check the names there)")
    clean = job.clean
    if clean.recovered:
        env.info(f"{_count(len(clean.recovered), 'address')} refused as nonexistent in an earlier run of issue "
                 f"{job.rendered.issue_id} added to {env.settings.delivery.suppressed}.")
    if clean.error is not None:
        env.warn(f"{clean.error}")


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}es" if word.endswith("s") else f"{n:,} {word}s"


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
@click.option("--lang", "languages", metavar="LANG", multiple=True,
              help="With --test: send only the edition in LANG (repeatable); default: every language edition.")
@click.option("--resend-all", is_flag=True,
              help="Mail the whole list again: also those the journal says have the issue, "
                   "or when the journal of an earlier send is missing.")
@pass_env
def send(env: Env, issue_id: str | None, tests: tuple[str, ...], dry_run: bool, yes: bool,
         rate: float | None, connections: int | None, unreviewed: bool, resend_all: bool,
         languages: tuple[str, ...]) -> None:
    """Send an issue (default: the latest) to the list, or a test to a few addresses.

    Every subscriber not suppressed and not yet delivered gets one message;
    each result is recorded in issues/<ID>/send-log.jsonl, so an interrupted
    or repeated send carries on where it stopped and never mails anyone twice.
    Ctrl-C, SIGTERM and SIGHUP let the messages in flight finish and be
    recorded (exit 130, 143, 129); a second Ctrl-C stops waiting for them.

    \b
    Examples:
      cepletter send --test me@example.org --test colleague@example.org
      cepletter send --dry-run
      cepletter send                 # asks before sending
      cepletter send 2025-12 --yes --rate 20 --connections 4
    """
    from cepletter.errors import UsageError

    if tests and (dry_run or unreviewed or rate or connections or resend_all):
        raise UsageError("--test cannot be combined with --dry-run, --unreviewed, --rate, --connections "
                         "or --resend-all")
    if languages and not tests:
        raise UsageError("--lang goes with --test: a send to the list gives each subscriber their own edition",
                         "Give the subscriber list a language column to choose editions.")
    rendered, folder = _render(env, issue_id)
    if tests:
        _send_test(env, rendered, tests, languages)
        return
    _send_list(env, rendered, folder, dry_run=dry_run, yes=yes, rate=rate, connections=connections,
               unreviewed=unreviewed, resend_all=resend_all)


def _send_test(env: Env, rendered: PersonalIssue, tests: tuple[str, ...], languages: tuple[str, ...] = ()) -> None:
    from cepletter import i18n
    from cepletter.deliver.send import send_test, test_addresses
    from cepletter.errors import UsageError

    addresses = test_addresses(tests)
    wanted = [i18n.normalise(lang) for lang in languages] or None
    have = [e.language for e in rendered.editions]
    for lang in wanted or []:
        if lang not in have:
            raise UsageError(f"--lang {lang}: issue {rendered.issue_id} has no such edition (it has: {', '.join(have)})")
    tested = send_test(env.settings, rendered, addresses, wanted)
    summary, where, sent = tested.summary, tested.where, tested.sent
    if sent:
        editions = f" ({', '.join(wanted or have)} edition{'s' * (len(wanted or have) > 1)})" if rendered.others else ""
        env.info(f"Test of issue {rendered.issue_id}{editions} sent to {', '.join(sent)} ({where}).")
    for failure in summary.failures:
        env.warn(f"{failure.email}: {failure.status}: {failure.reply}")
    if summary.interrupted:
        raise click.exceptions.Exit(_STOP_STATUS.get(summary.stopped_by or signal.SIGINT, ExitStatus.INTERRUPTED))
    if summary.failures:
        raise click.exceptions.Exit(ExitStatus.ERROR)


def _confirm(env: Env, job: ListSend, yes: bool) -> None:
    from cepletter.errors import UsageError

    c = job.counts
    o = job.options
    pace = f", {o.connections} connection(s), {o.rate:g} messages/s" if o.rate else ""
    lines = [
        f"Issue:      {job.rendered.issue_id}",
        f"Subject:    {job.factory.subject}",
        *_edition_lines(job),
        f"From:       {job.settings.newsletter.from_}",
        f"Transport:  {job.transport.description}{pace}",
    ]
    if job.signoff is not None:
        lines.append(f"Reviewed:   {job.signoff.describe()}")
    elif job.unreviewed:
        lines.append("Reviewed:   NO (--unreviewed)")
    if job.resend_all:
        lines.append("Resending:  to everyone on the list (--resend-all): the journal is not consulted")
    if job.uncertain_retried:
        lines.append(f"Uncertain:  {len(job.uncertain_retried):,} whose earlier delivery is uncertain get it once more")
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


def _edition_lines(job: ListSend) -> list[str]:
    """For an issue in several languages: each edition's subject and how many get it."""
    from cepletter.message.editions import EditionFactory

    if not isinstance(job.factory, EditionFactory):
        return []
    subjects = job.factory.subjects
    return ["Editions:   " + ", ".join(f"{lang} {n:,}" for lang, n in job.editions.items())
            + " (each subscriber gets one, by the list's language column)",
            *(f"  {lang + ':':<9} {subject}" for lang, subject in subjects.items())]


def _send_list(env: Env, rendered: PersonalIssue, folder: Path, *, dry_run: bool, yes: bool,
               rate: float | None, connections: int | None, unreviewed: bool, resend_all: bool = False) -> None:
    from cepletter.deliver.send import build_all, prepare

    _warn_ignored_journal(env)
    job = prepare(env.settings, rendered, folder, dry_run=dry_run, unreviewed=unreviewed,
                  rate=rate, connections=connections, resend_all=resend_all)
    try:
        _report_invalid(env, job.invalid)
        _report_list(env, job)
        _report_kept(env, job)
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
    with _hung_up(summary):
        _print_table(env, job, summary)
        _report_uncertain(env, job, summary)
        _report_throttling(env, summary)
        if summary.interrupted:
            how = "Interrupted" if summary.stopped_by in (None, signal.SIGINT) else \
                f"Stopped by {signal.Signals(summary.stopped_by).name}"
            env.info(f"{how}: {summary.sent:,} sent before stopping; every message in flight was finished "
                     "and recorded. Run `cepletter send` again to carry on.")
        elif summary.failed or summary.deferred:
            _advise(env, job, summary)
    if summary.interrupted:
        raise click.exceptions.Exit(_STOP_STATUS.get(summary.stopped_by or signal.SIGINT, ExitStatus.INTERRUPTED))
    if summary.failed or summary.deferred or summary.uncertain:
        raise click.exceptions.Exit(ExitStatus.ERROR)


# A run stopped by a signal exits 128 + the signal's number, as the shell reports it.
_STOP_STATUS: dict[int, ExitStatus] = {
    signal.SIGINT: ExitStatus.INTERRUPTED, signal.SIGTERM: ExitStatus.TERMINATED, signal.SIGHUP: ExitStatus.HANGUP,
}


def _warn_ignored_journal(env: Env) -> None:
    from cepletter.workspace import ignored_journal_rule

    found = ignored_journal_rule(env.settings.root)
    if found is not None:
        path, line = found
        env.warn(f"{path.name}, line {line}: git ignores the delivery journals (send-log.jsonl), so "
                 "`git clean` or a fresh clone loses the record of who has an issue; delete that line "
                 "and commit issues/*/send-log.jsonl")


def _report_uncertain(env: Env, job: ListSend, summary: Summary) -> None:
    """Name every message whose verdict never came: the subscriber may have it, maybe twice."""
    if summary.uncertain_results:
        env.info("The connection was lost after these messages had been sent, before the server's answer; "
                 "the server may have taken them:")
        for result in summary.uncertain_results:
            if result.status == "sent":
                what = "sent again and accepted: may have it twice"
            elif result.status == "uncertain":
                what = "still uncertain: may have it, not sent again"
            else:
                what = f"sent again: {result.status}: may have it from the first try"
            env.info(f"  {result.email}: {what} ({result.reply})")


def _report_throttling(env: Env, summary: Summary) -> None:
    """How the run followed the relay's requests to slow down: the pace it fell to, and where it ended."""
    t = summary.throttling
    if t is None:
        return
    times = "once" if t.times == 1 else f"{t.times:,} times"
    end = ("and was back at full speed by the end" if t.rate >= t.full_rate and t.connections >= t.full_connections
           else f"and ended at {_pace(t.rate, t.connections)}")
    env.info(f"The server asked to slow down {times} ({t.reply}): cepletter lowered its pace to "
             f"{_pace(t.lowest_rate, t.lowest_connections)} {end}; the messages it refused were sent again. "
             f"If this happens on every send, set [delivery] rate and connections (now "
             f"{_pace(t.full_rate, t.full_connections)}) to what the relay allows.")


def _pace(rate: float, connections: int) -> str:
    return f"{rate:.3g} messages/s on {_count(connections, 'connection')}"


def _report_kept(env: Env, job: ListSend) -> None:
    """Before sending: those whose delivery in an earlier run is uncertain and who are not mailed again."""
    kept = job.uncertain_kept
    if kept:
        why = "retry_uncertain = false" if not job.settings.delivery.retry_uncertain else "tried twice already"
        env.info(f"{len(kept):,} address(es) with an uncertain delivery in an earlier run, "
                 f"not mailed again ({why}): {', '.join(sorted(kept)[:10])}{' ...' if len(kept) > 10 else ''}")


def _advise(env: Env, job: ListSend, summary: Summary) -> None:
    """What the failed and deferred addresses mean, and what to do: a permanent refusal is not
    worth a second try, a temporary one is."""
    env.info("Not everyone got the issue.")
    clean = job.clean
    listed = env.settings.delivery.suppressed
    if clean.suppressed:
        one = len(clean.suppressed) == 1
        env.info(f"Added {_count(len(clean.suppressed), 'address')} to {listed}: the server says "
                 f"{'it does' if one else 'they do'} not exist, so no later send mails {'it' if one else 'them'}.")
    left = [email for email in clean.refused if email not in set(clean.suppressed)]
    if left and env.settings.suppressed_path is None:
        env.warn(f"{_count(len(left), 'address')} the server says do not exist, but [delivery] suppressed = \"\" "
                 f"keeps no suppression list: take them out of {env.settings.delivery.subscribers}.")
    elif left and clean.error is not None:
        env.warn(f"{clean.error}; the {_count(len(left), 'address')} refused as nonexistent will be added "
                 f"by the next `cepletter send {job.rendered.issue_id}`.")
    elif left and clean.held_back:
        env.warn(f"{len(left):,} of {job.counts.already_sent + summary.done:,} addresses were refused as "
                 f"nonexistent: more likely the server does not relay for this account than that they are "
                 f"gone, so none was added to {listed}. Check [smtp] host, port and username.")
    refused_for_good = summary.failed - len(clean.refused)
    if refused_for_good:
        env.info(f"{_count(refused_for_good, 'address')} refused for good (the server's replies are above): "
                 "sending again will not change that until the cause is fixed.")
    if summary.deferred:
        env.info(f"{_count(summary.deferred, 'address')} deferred (the server said: try later). "
                 "Run `cepletter send` again to retry them; those already sent are skipped.")


def _final_line(summary: Summary, total: int, suppressed: int) -> str:
    """"Sent 40 of 42 in 3.1 s (13 messages/s); 2 failed, suppressed from now on." No rate for
    a run under a second: it would say more about the clock than about the server."""
    elapsed = summary.elapsed
    if elapsed < 1:
        took = "in under a second"
    else:
        minutes, seconds = divmod(round(elapsed), 60)
        took = f"in {minutes} min {seconds} s" if minutes else f"in {elapsed:.1f} s"
        if summary.sent:
            took += f" ({summary.sent / elapsed:.0f} messages/s)"
    parts = []
    if summary.failed:
        failed = f"{summary.failed:,} failed"
        if suppressed and suppressed == summary.failed:
            failed += ", suppressed from now on"
        elif suppressed:
            failed += f" ({suppressed:,} suppressed from now on)"
        parts.append(failed)
    if summary.deferred:
        parts.append(f"{summary.deferred:,} deferred")
    return f"Sent {summary.sent:,} of {total:,} {took}" + "".join(f"; {p}" for p in parts) + "."


def _run_with_progress(env: Env, job: ListSend) -> Summary:
    from cepletter.deliver.send import run

    total = job.counts.to_send
    if not env.stderr_is_terminal():
        summary = run(job)
        with _hung_up(summary):
            env.info(_final_line(summary, total, len(job.clean.suppressed)))
        return summary
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    done: list[Summary] = []
    with _hung_up(done):
        with Progress(TextColumn("Sending"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=env.err(), transient=False) as bar:
            task = bar.add_task("send", total=total)

            def advance(_result: Result) -> None:
                bar.advance(task)

            done.append(run(job, advance))
        env.info(_final_line(done[0], total, len(job.clean.suppressed)))
    return done[0]


@contextlib.contextmanager
def _hung_up(summary: Summary | list[Summary]) -> Iterator[None]:
    """After SIGHUP the terminal is gone and writing to it fails: the run is journaled, so the
    report is dropped rather than turned into an error. ``summary`` may be a list filled later."""
    try:
        yield
    except OSError:
        found = (summary[0] if summary else None) if isinstance(summary, list) else summary
        if found is None or found.stopped_by != signal.SIGHUP:
            raise


def _print_table(env: Env, job: ListSend, summary: Summary | None) -> None:
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
        added = len(job.clean.suppressed)
        table.add_row("failed", f"{summary.failed:,}", f"{added:,} added to {job.settings.delivery.suppressed}" if added else "")
        table.add_row("deferred", f"{summary.deferred:,}", "")
        if summary.uncertain:
            table.add_row("uncertain", f"{summary.uncertain:,}", "may have arrived: see below")
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
