"""Commands that render: preview, check."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import click

from cepletter.cli.env import Env, escape, pass_env
from cepletter.errors import ExitStatus

if TYPE_CHECKING:
    from cepletter.review.checks import Finding
    from cepletter.review.preview import Preview


def _kb(size: int) -> str:
    return f"{size / 1024:.1f} KB"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _print_summary(env: Env, preview: Preview) -> None:

    issue = preview.issue
    sections = ", ".join(f"{s.heading} ({len(s.items)})" for s in issue.sections)
    count = len(issue.items)
    events = f", {len(issue.events)} event{'s' if len(issue.events) != 1 else ''}" if issue.events else ""
    who = preview.recipient
    shown = f"{who.name} <{who.email}>" if who.name else who.email
    t = preview.timings
    editions = len(preview.editions) > 1
    lines = [
        f"Issue {issue.id}: {issue.title}" + (f"  [{preview.language} edition]" if editions else ""),
        f"  Subject    {issue.subject}",
        f"  Preheader  {preview.rendered.preheader or '(none)'}"
        + ("" if issue.preheader.strip() or not preview.rendered.preheader else "  (made from the items)"),
        f"  Items      {count} item{'s' if count != 1 else ''}{events}: {sections}",
        *([f"  Editions   {', '.join(preview.editions)} (preview --lang LANG shows another)"] if editions else []),
        f"  Shown as   {shown}, the {preview.recipient_source}",
        f"  HTML       {_kb(preview.html_bytes):>9}  {preview.html_path or ''}",
        f"  Text       {_kb(preview.text_bytes):>9}  {preview.text_path or ''}",
        f"  Rendered   in {_ms(t.total)} (Jinja {_ms(t.jinja)}, inlining {_ms(t.inline)}, text {_ms(t.text)}, "
        f"loading the inliner {_ms(t.setup)})"
        + (", inlined page unchanged since the last render" if t.cached else ""),
    ]
    for line in lines:
        env.info(line)
    _print_findings(env, preview.findings, to_stderr=True)


def _print_findings(env: Env, findings: list[Finding], *, to_stderr: bool) -> None:

    from cepletter.review import checks

    errors, warnings = checks.errors(findings), checks.warnings(findings)
    if not findings:
        verdict = "  Checks     no problems found"
    else:
        verdict = f"  Checks     {len(errors)} error{'s' * (len(errors) != 1)}, " \
                  f"{len(warnings)} warning{'s' * (len(warnings) != 1)}"
    emit = env.info if to_stderr else (lambda m: env.out().print(m, markup=False))
    emit(verdict)
    con = env.err() if to_stderr else env.out()
    for finding in errors + warnings:
        label = "error" if finding.is_error else "warning"
        text = f"{label}: {finding.message}\n    {finding.hint}"
        if con.is_terminal:
            colour = "red" if finding.is_error else "yellow"
            con.print(f"[{colour}]{label}:[/] {escape(finding.message)}\n    {escape(finding.hint)}")
        else:
            con.print(text, markup=False)


@click.command()
@click.argument("issue_id", required=False, metavar="[ID]")
@click.option("--open", "open_browser", is_flag=True, help="Open the built email in your web browser.")
@click.option("--serve", is_flag=True, help="Serve it on 127.0.0.1, re-render and reload on every save.")
@click.option("--port", type=click.IntRange(0, 65535), default=8025, show_default=True,
              help="Port for --serve (0: any free port).")
@click.option("--text", "show_text", is_flag=True, help="Print the text version to standard output.")
@click.option("--screenshot", is_flag=True,
              help="Write build/desktop.png (600 px) and build/mobile.png (375 px) with headless Chromium.")
@click.option("--lang", "language", metavar="LANG",
              help="Show the issue's edition in LANG (its translation issue.LANG.md); default: issue.md's.")
@pass_env
def preview(env: Env, issue_id: str | None, open_browser: bool, serve: bool, port: int,
            show_text: bool, screenshot: bool, language: str | None) -> None:
    """Render an issue exactly as subscribers will see it.

    Writes issues/<ID>/build/newsletter.html (CSS inlined) and newsletter.txt,
    filled in for the first subscriber of the list, and prints a summary with
    the checks' findings. ID defaults to the latest issue.

    \b
    Examples:
      cepletter preview                 # the latest issue
      cepletter preview 2025-12 --open  # and open it in the browser
      cepletter preview --serve         # live preview while you edit
      cepletter preview --screenshot    # PNGs for approvers
      cepletter preview --lang fr       # the French edition (issue.fr.md)
    """
    from cepletter.review.preview import build_preview

    settings = env.settings
    if screenshot:
        from cepletter.review.screenshot import require_browser

        require_browser()  # before rendering: say at once when Chromium is missing
    result = build_preview(settings, issue_id, language=language)
    _print_summary(env, result)
    if show_text:
        click.echo(result.text, nl=False)
    if screenshot and result.html_path is not None:
        from cepletter.review.screenshot import screenshots

        tag = "" if result.language == result.editions[0] else result.language
        for path in screenshots(result.html_path, result.html_path.parent, tag=tag):
            env.info(f"  Screenshot {path}")
    if open_browser and result.html_path is not None and not serve:
        import webbrowser

        webbrowser.open(result.html_path.resolve().as_uri())
    if serve:
        _serve(env, result.issue.id, port, open_browser, language)


def _serve(env: Env, issue_id: str, port: int, open_browser: bool, language: str | None = None) -> None:
    import time

    from cepletter.errors import CepletterError
    from cepletter.review.server import PreviewServer, PreviewState, preview_state

    def changed(state: PreviewState) -> None:
        if state.error:
            env.warn(f"{time.strftime('%H:%M:%S')} could not re-render: {state.error.splitlines()[0]}")
        else:
            env.info(f"{time.strftime('%H:%M:%S')} re-rendered {issue_id}")

    state = preview_state(env.settings.root, issue_id, language)
    state.refresh(force=True)
    state.on_change = changed
    try:
        server = PreviewServer(state, port=port).start()
    except OSError as exc:
        raise CepletterError(f"cannot serve on 127.0.0.1 port {port}: {exc.strerror}",
                             "Use another port, e.g. --port 0 for any free one.") from None
    env.info(f"Serving {issue_id} at {server.url} (press Ctrl-C to stop)")
    if open_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        env.info("Stopped.")
    finally:
        server.close()


@click.command()
@click.argument("issue_id", required=False, metavar="[ID]")
@click.option("--strict", is_flag=True, help="Exit with 1 on warnings too, not only on errors.")
@click.option("--clients", is_flag=True,
              help="Also list HTML/CSS the email uses that common mail clients do not support.")
@click.option("--all", "every_feature", is_flag=True,
              help="With --clients (implied): every feature in the grid, also those all clients support.")
@click.option("--lang", "language", metavar="LANG",
              help="Check only the edition in LANG (default: every language edition of the issue).")
@pass_env
def check(env: Env, issue_id: str | None, strict: bool, clients: bool, every_feature: bool,
          language: str | None) -> None:
    """Check an issue's email before sending it.

    Errors (exit 1): HTML over 102 KB, a relative, empty or non-http(s)/mailto
    link, no unsubscribe link, a template placeholder left unrendered, the
    placeholder intro of `draft`, a from that is not an email address, a
    subscriber list that is missing, unreadable or without an email column.
    Warnings (exit 1 only with --strict): images without alt text or width,
    non-https links or images, no preheader, a preheader naming an item no
    longer in the issue, a subject over 70 characters, items older than the
    previous issue, a subscriber list with no valid address, a text that a
    translation (issue.<lang>.md) leaves out. An issue with translations is
    checked in every language.

    \b
    Examples:
      cepletter check
      cepletter check 2025-12 --strict --clients
      cepletter check --clients --all   # the whole grid
      cepletter check --lang fr         # only the French edition
    """
    from cepletter.review import checks
    from cepletter.review.preview import build_preview

    result = build_preview(env.settings, issue_id, write=False, language=language)
    findings = result.findings
    if language is None and len(result.editions) > 1:
        # Every other edition too; what does not depend on the language (settings, the list) is said once.
        seen = {(f.level, f.code, f.message) for f in findings}
        for other in result.editions[1:]:
            edition = build_preview(env.settings, result.issue.id, write=False, language=other)
            for finding in edition.findings:
                if (finding.level, finding.code, finding.message) in seen:
                    continue
                message = finding.message if finding.code == "untranslated" else f"{other} edition: {finding.message}"
                findings.append(dataclasses.replace(finding, message=message))
    out = env.out()
    for finding in findings:
        label = "error" if finding.is_error else "warning"
        out.print(f"{label}: {finding.message}\n    {finding.hint}", markup=False)
    clean_clients = True
    clients = clients or every_feature
    if clients:
        from cepletter.review.compat import client_report

        report, clean_clients = client_report(result.html, every_feature=every_feature)
        out.print(report, markup=False)
    errors, warnings = len(checks.errors(findings)), len(checks.warnings(findings))
    shown = result.issue.id + (f" ({', '.join(result.editions)})" if len(result.editions) > 1 and language is None
                               else f" ({result.language})" if language else "")
    verdict = (f"{shown}: {errors} error{'s' * (errors != 1)}, "
               f"{warnings} warning{'s' * (warnings != 1)}")
    if clients and not clean_clients:
        verdict += ", mail client support problems"
    failed = errors > 0 or (strict and (warnings > 0 or not clean_clients))
    env.info(verdict + (" — fix them before sending." if failed else " — ready to send."))
    if failed:
        raise click.exceptions.Exit(ExitStatus.ERROR)
