"""Commands that publish and sign off: archive, approve."""

from __future__ import annotations

from pathlib import Path

import click

from cepletter.cli.env import Env, pass_env


@click.command()
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="Folder for the archive.  [default: archive/ in the workspace]",
)
@pass_env
def archive(env: Env, output: Path | None) -> None:
    """Write a static web archive of every issue: index, web versions, Atom feed.

    The folder holds index.html (all issues, newest first), <ID>/index.html
    (each issue without personal data) and feed.xml. Links inside are
    relative: upload the folder to the web_url of cepletter.toml, or open
    index.html from disk. Running it again rewrites only what changed.

    \b
    Examples:
      cepletter archive
      cepletter archive -o ~/site/newsletter
    """
    from cepletter.publish.archive import build_archive

    settings = env.settings
    result = build_archive(settings, output)
    where = _shown(result.folder, settings.root)
    count = len(result.issues)
    env.info(f"Archive of {count} issue{'' if count == 1 else 's'} in {where}: "
         f"{len(result.written)} file(s) written, {len(result.unchanged)} unchanged"
         + (f", {len(result.removed)} removed" if result.removed else "") + ".")
    for path in result.written:
        env.info(f"  wrote {_shown(path, result.folder)}")
    for path in result.removed:
        env.info(f"  removed {_shown(path, result.folder)} (its issue is gone)")
    if settings.newsletter.web_url:
        env.info(f"Upload the folder to {settings.newsletter.web_url} so the emails' "
             "\"view in your browser\" links find their pages.")
    else:
        env.info("Tip: set web_url in cepletter.toml to where the archive will live, "
             "to give the emails a \"view in your browser\" link.")


@click.command()
@click.argument("issue_id", required=False, metavar="[ID]")
@click.option("--by", "by", required=True, metavar="NAME", help="Who reviewed and approves it.")
@click.option("--lang", "language", metavar="LANG",
              help="Approve only the edition in LANG (default: every language edition of the issue).")
@pass_env
def approve(env: Env, issue_id: str | None, by: str, language: str | None) -> None:
    """Record that this exact content of an issue was reviewed and approved.

    Sending to the list over SMTP needs an approval, or a test send
    (cepletter send --test ADDR) of the same subject, HTML and text. Any edit
    afterwards needs a new approval. The record goes to issues/<ID>/review.jsonl.
    Default ID: the latest issue. An issue with translations (issue.<lang>.md)
    needs each language edition approved; without --lang, all are.

    \b
    Example:
      cepletter approve 2025-12 --by "Anna Jansen"
      cepletter approve --lang fr --by "Marie Dubois"
    """
    from cepletter.review.signoff import approve as approve_issue
    from cepletter.review.signoff import review_path

    settings = env.settings
    done = approve_issue(settings, issue_id, by, language=language)
    for approval in done:
        which = f" ({approval.rendered.language} edition)" if approval.editions > 1 else ""
        if approval.earlier is not None:
            env.info(f"This content{which} was already {approval.earlier.describe()}; recorded again.")
        env.info(f"Approved issue {approval.rendered.issue_id}{which} by {approval.by}: {approval.subject!r} "
                 f"(content {approval.digest[:12]}).")
    env.info(f"  Recorded in {_shown(review_path(settings, done[0].rendered.issue_id), settings.root)}. "
             "Sending this content to the list is now allowed; any edit needs a new approval.")


def _shown(path: Path, base: Path) -> str:
    """A path relative to ``base`` when it is inside it (shorter messages)."""
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)
