"""Workspaces and issues for the rendering tests, written into tmp_path."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from cepletter.config import Settings, load_settings
from cepletter.issue.file import Issue, IssueItem, Section, save
from cepletter.sources.items import Event

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_ISSUE = REPO / "issues" / "2025-12" / "issue.md"

CONFIG = """\
[newsletter]
name = "CEP Newsletter"
from = "CEP <newsletter@example.org>"
web_url = "https://example.org/newsletter/"
unsubscribe_url = "https://example.org/unsubscribe?email={email}&list=cep"
postal_address = "CEP, P.O. Box 8219, 3503 RE Utrecht, The Netherlands"
timezone = "Europe/Amsterdam"
"""

SUMMARY = (
    "<p>Probation services across Europe met in Utrecht to compare how they support people "
    "under supervision with mental health needs, and to agree on <strong>shared training</strong>. "
    "Read the <a href=\"https://www.cep-probation.org/report/\">full report</a>.</p>"
)
CATEGORIES = ("Mental Health", "Reading corner", "CEP Events", "Partners")


def make_workspace(root: Path, config: str = CONFIG, subscribers: str | None = None) -> Settings:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cepletter.toml").write_text(config, encoding="utf-8")
    (root / "issues").mkdir(exist_ok=True)
    if subscribers is not None:
        (root / "subscribers.csv").write_text(subscribers, encoding="utf-8")
        (root / "suppressed.csv").write_text("email\n", encoding="utf-8")
    return load_settings(root)


def make_item(n: int, *, day: date | None = None, image: bool = True, summary: str = SUMMARY) -> IssueItem:
    when = datetime.combine(day or date(2025, 12, 10), datetime.min.time(), tzinfo=UTC)
    return IssueItem(
        id=f"https://www.cep-probation.org/?p={1000 + n}",
        title=f"Item {n}: probation practice in Europe, news and research from the field",
        link=f"https://www.cep-probation.org/item-{n}/",
        date=when + timedelta(hours=9),
        category=CATEGORIES[n % len(CATEGORIES)],
        image=f"https://www.cep-probation.org/wp-content/uploads/2025/12/item-{n}.jpg" if image else None,
        summary=summary,
        source="news",
    )


def make_issue(
    settings: Settings,
    issue_id: str = "2025-12",
    *,
    items: int = 4,
    events: bool = True,
    preheader: str = "Mental health in probation, a new report and the 2026 calendar",
    subject: str = "CEP Newsletter December 2025",
    issue_date: date = date(2025, 12, 18),
    intro: str = "Welcome to the **December** issue. See [the calendar](https://www.cep-probation.org/calendar/).",
    sections: list[Section] | None = None,
) -> Issue:
    if sections is None:
        per = max(1, items // 2)
        all_items = [make_item(n) for n in range(1, items + 1)]
        sections = [Section(heading=f"Section {k // per + 1}", items=all_items[k: k + per])
                    for k in range(0, items, per)]
    issue = Issue(
        id=issue_id,
        title="Newsletter December 2025",
        subject=subject,
        date=issue_date,
        preheader=preheader,
        sections=sections,
        events=[
            Event("CEP Conference on Electronic Monitoring",
                  datetime(2026, 3, 10, 8, 30, tzinfo=UTC),
                  datetime(2026, 3, 10, 16, 0, tzinfo=UTC),
                  location="Lisbon, Portugal", link="https://www.cep-probation.org/events/em/"),
            Event("Expert Group meeting", date(2026, 2, 3), date(2026, 2, 4), all_day=True, location="Online"),
        ] if events else [],
        intro=intro,
    )
    save(issue, settings.issues_dir / issue_id / "issue.md")
    return issue
