"""The editorial desk: `cepletter desk`."""

from __future__ import annotations

import click

from cepletter.cli.env import Env, pass_env


@click.command()
@click.argument("issue_id", required=False, metavar="[ID]")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default="0: a free port",
              help="Port on 127.0.0.1 to listen on.")
@click.option("--no-open", is_flag=True, help="Do not open the browser; just print the address.")
@pass_env
def desk(env: Env, issue_id: str | None, port: int, no_open: bool) -> None:
    """Shape an issue in the browser and see it as subscribers will.

    Edits issues/<ID>/issue.md: subject, preheader, intro, sections and
    items, with the candidates of `cepletter items` to tick and a live
    preview. Every change is saved to the file at once; edits made to the
    file in a text editor meanwhile are loaded. Without an ID (or with a new
    one) it offers to draft a new issue. The address it prints carries a
    secret token: only this computer can open it. Stop with Ctrl-C.

    \b
    Examples:
      cepletter desk                # draft a new issue, or open one
      cepletter desk 2025-12        # edit that issue
      cepletter desk --no-open --port 8026
    """
    import time

    from cepletter.desk.server import DeskServer
    from cepletter.desk.session import Desk
    from cepletter.errors import CepletterError

    def event(message: str) -> None:
        env.info(f"{time.strftime('%H:%M:%S')} {message}")

    settings = env.settings
    session = Desk(settings.root, issue_id, on_event=event)
    try:
        server = DeskServer(session, port=port, log=event).start()
    except OSError as exc:
        raise CepletterError(f"cannot listen on 127.0.0.1 port {port}: {exc.strerror}",
                             "Use another port, or leave out --port for a free one.") from None
    what = f"issue {session.issue_id}" if session.issue_id else "a new issue"
    env.info(f"The desk for {what} is open at:")
    click.echo(f"    {server.url}")
    env.info("Only this computer can open it (the address carries a secret token). Press Ctrl-C to stop.")
    if not no_open:
        import webbrowser

        webbrowser.open(server.url)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        env.info("Stopped.")
    finally:
        server.close()
