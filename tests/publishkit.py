"""Small workspaces for the publishing tests (archive, approve, review)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from cepletter.config import Settings, load_settings
from cepletter.issue.file import Issue, IssueItem, Section, save
from cepletter.issue.folder import issue_path

CONFIG = """\
[newsletter]
name = "CEP Newsletter"
from = "CEP <newsletter@example.org>"
web_url = "{web_url}"
unsubscribe_url = "https://example.org/unsubscribe?email={{email}}"
postal_address = "CEP, P.O. Box 8219, 3503 RE Utrecht, The Netherlands"
timezone = "Europe/Amsterdam"
"""


def make_workspace(root: Path, web_url: str = "https://example.org/newsletter/") -> Settings:
    root.mkdir(parents=True, exist_ok=True)
    config = CONFIG.format(web_url=web_url)
    if not web_url:
        config = config.replace('web_url = ""\n', "")
    (root / "cepletter.toml").write_text(config, encoding="utf-8")
    (root / "issues").mkdir(exist_ok=True)
    return load_settings(root)


def make_issue(settings: Settings, issue_id: str, day: date, title: str, items: int = 2,
               preheader: str = "News from probation in Europe") -> Issue:
    """An issue with ``items`` items in one section, saved where cepletter keeps it."""
    entries = [
        IssueItem(
            id=f"{issue_id}-{n}",
            title=f"{title}: story {n} & more",
            link=f"https://www.cep-probation.org/{issue_id}/story-{n}/",
            date=day,
            category="CEP Events",
            summary=f"<p>Summary {n} of {title}.</p>",
            source="news",
        )
        for n in range(1, items + 1)
    ]
    issue = Issue(
        id=issue_id,
        title=title,
        subject=f"{title} – out now",
        date=day,
        preheader=preheader,
        sections=[Section(heading="News", items=entries)],
        intro=f"Welcome to the {title}.",
    )
    save(issue, issue_path(settings.issues_dir, issue_id))
    return issue
