"""Small builders shared by the delivery tests: settings, a rendered issue, lists."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from cepletter.config import Settings, settings_from_dict
from cepletter.message.personal import PersonalIssue, unsubscribe_url
from cepletter.message.recipient import Recipient
from cepletter.render.rendered import RenderedIssue, SlotTemplate

UNSUB = "https://example.org/unsubscribe?email={email}"


def make_settings(root: Path, **tables: dict[str, Any]) -> Settings:
    newsletter = {
        "name": "CEP Newsletter",
        "from": "CEP <newsletter@example.org>",
        "unsubscribe_url": UNSUB,
        "unsubscribe_mailto": "unsubscribe@example.org",
        "reply_to": "communications@example.org",
    }
    newsletter.update(tables.pop("newsletter", {}))
    data: dict[str, Any] = {"newsletter": newsletter, **tables}
    return settings_from_dict(root, data, root / "cepletter.toml")


def _text(value: str) -> str:
    return value


def make_rendered(
    subject: str = "Newsletter December 2025", body_lines: int = 3, unsub: str = UNSUB
) -> PersonalIssue:
    """A rendered issue with the recipient's name and unsubscribe link as slots."""
    filler = "".join(f"<p>Paragraph {i} with = signs, café and a long line {'x' * 90}</p>\n" for i in range(body_lines))
    html_t = SlotTemplate(
        parts=(
            "<html><body><p>Dear ",
            ",</p>\n" + filler + '<p><a href="',
            '">Unsubscribe</a></p></body></html>\n',
        ),
        slots=(("recipient.name", html.escape), ("unsubscribe_url", html.escape)),
    )
    text_t = SlotTemplate(
        parts=("Dear ", ",\n\nNews of the month: café.\n.\nFrom the start\nUnsubscribe: ", "\n"),
        slots=(("recipient.name", _text), ("unsubscribe_url", _text)),
    )

    def values_for(recipient: Recipient) -> dict[str, str]:
        return {
            "recipient.email": recipient.email,
            "recipient.name": recipient.name or "reader",
            "unsubscribe_url": unsubscribe_url(unsub, "CEP Newsletter", recipient),
        }

    return PersonalIssue(
        RenderedIssue(
            issue_id="2025-12",
            subject=subject,
            preheader="The December issue",
            html=html_t,
            text=text_t,
        ),
        values_for=values_for,
        web_values={"recipient.name": "reader", "recipient.email": "", "unsubscribe_url": "https://example.org/unsubscribe"},
    )


def write_list(path: Path, addresses: list[str], header: str = "email,name") -> Path:
    lines = [header] + [f"{a},Reader {i}" for i, a in enumerate(addresses)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_issue(root: Path, issue_id: str = "2025-12", subject: str = "Newsletter December 2025") -> Path:
    """A small issue file, written as cepletter saves it."""
    from datetime import date

    from cepletter.issue.file import Issue, IssueItem, Section, save
    from cepletter.issue.folder import issue_path

    items = [
        IssueItem(
            id=f"https://example.org/news/{n}",
            title=f"News item {n}: Probation in Europe",
            link=f"https://example.org/news/{n}",
            date=date(2025, 11, n + 1),
            category="CEP Events",
            summary=f"<p>Summary of item {n}, with <b>bold</b> text.</p>",
            source="news",
        )
        for n in range(3)
    ]
    issue = Issue(
        id=issue_id, title="December 2025", subject=subject, date=date(2025, 12, 1),
        preheader="Featuring the 2026 activity calendar",
        sections=[Section("News", items)], intro="Welcome to the **December** issue.",
    )
    path = issue_path(root / "issues", issue_id)
    save(issue, path)
    return path


def make_workspace(root: Path, toml_extra: str = "", subscribers: str | None = None) -> Path:
    """A workspace folder with cepletter.toml, a list, a suppression list and one issue."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "cepletter.toml").write_text(
        '[newsletter]\nname = "CEP Newsletter"\nfrom = "CEP <newsletter@example.org>"\n'
        'reply_to = "communications@example.org"\nweb_url = "https://example.org/newsletter/"\n'
        f'unsubscribe_url = "{UNSUB}"\nunsubscribe_mailto = "unsubscribe@example.org"\n'
        'postal_address = "CEP, Utrecht"\n' + toml_extra,
        encoding="utf-8",
    )
    if subscribers is None:
        subscribers = "email,name\nanna@example.org,Anna Jansen\neva@example.org,Eva Novák\nluca@example.org,\n"
    (root / "subscribers.csv").write_text(subscribers, encoding="utf-8")
    (root / "suppressed.csv").write_text("email\ngone@example.org\n", encoding="utf-8")
    make_issue(root)
    return root
