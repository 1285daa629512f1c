"""Golden files: the example issue rendered as the web version (HTML and text), and real feeds.

The golden input is tests/golden/2025-12.issue.md, a copy of the example
issue; the live example is checked separately for completeness.

Run with CEPLETTER_UPDATE_GOLDEN=1 to accept a deliberate change of the
theme or the example issue; then look at the diff before committing.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from lxml import html as lxml_html
from renderkit import CONFIG, EXAMPLE_ISSUE, make_workspace

from cepletter.issue.file import Issue, IssueItem, Section, load, save
from cepletter.message.personal import render_personal
from cepletter.message.recipient import Recipient
from cepletter.review.checks import check_content, check_html

GOLDEN = Path(__file__).resolve().parent / "golden"


def normalise(text: str) -> str:
    """Strip what may legitimately vary between machines: trailing spaces and the final newline.

    The rendering itself has nothing volatile (no clock, no random tokens in
    the output), so the rest is compared byte for byte.
    """
    return "\n".join(line.rstrip() for line in text.splitlines()).strip() + "\n"


def compare(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("CEPLETTER_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(normalise(actual), encoding="utf-8")
    assert path.is_file(), f"{path} is missing: run the tests with CEPLETTER_UPDATE_GOLDEN=1 to create it"
    expected = path.read_text(encoding="utf-8")
    assert normalise(actual) == expected, (
        f"{name} differs from the golden file; if the change is intended, "
        "run with CEPLETTER_UPDATE_GOLDEN=1 and review the diff"
    )


def _workspace_with(tmp_path: Path, source: Path) -> tuple[object, Issue]:
    # The example's intro greets ("Dear colleagues,"), so its workspace sets no greeting of its own.
    settings = make_workspace(tmp_path / "ws", CONFIG.replace('timezone = "', 'greeting = ""\ntimezone = "'))
    target = settings.issues_dir / "2025-12" / "issue.md"
    target.parent.mkdir(parents=True)
    shutil.copyfile(source, target)
    return settings, load(target)


@pytest.fixture
def example(tmp_path: Path) -> tuple[object, Issue]:
    """The example issue as it is in the repository now."""
    if not EXAMPLE_ISSUE.is_file():
        pytest.skip("the example issue issues/2025-12/issue.md is not in this checkout")
    return _workspace_with(tmp_path, EXAMPLE_ISSUE)


def test_example_issue_matches_golden_files(tmp_path: Path) -> None:
    # A frozen copy of the example issue, so that editing the example's
    # wording does not break this test: only a change of rendering does.
    settings, issue = _workspace_with(tmp_path, GOLDEN / "2025-12.issue.md")
    rendered = render_personal(settings, issue)
    html, text = rendered.web()
    compare("2025-12.web.html", html)
    compare("2025-12.web.txt", text)
    person, _ = rendered.fill(Recipient("anna.jansen@example.org", "Anna Jansen"))
    assert "Anna Jansen" not in person
    assert person.replace("?email=anna.jansen@example.org&amp;list=cep", "?list=cep") == html


def test_example_issue_is_complete_and_passes_the_checks(example: tuple) -> None:
    settings, issue = example
    rendered = render_personal(settings, issue)
    html, text = rendered.fill(Recipient("anna.jansen@example.org", "Anna Jansen"))
    root = lxml_html.document_fromstring(html)
    page_text = " ".join(root.text_content().split())  # as a browser shows it: a line break is a space
    assert issue.title in page_text
    flat_text = " ".join(text.split())
    for item in issue.items:
        assert item.title in page_text
        assert item.title in flat_text
        assert root.xpath("//a[@href=$link]", link=item.link)
    for event in issue.events:
        assert event.title in page_text
    unsubscribe = rendered.values_for(Recipient("anna.jansen@example.org")).get("unsubscribe_url", "")
    assert check_html(html, {unsubscribe}) == []
    assert check_content(issue.subject, issue.preheader, issue.items, None) == []
    assert len(html.encode("utf-8")) < 102 * 1024


# ---------------------------------------------------------------- real feeds

def _issue_from_feed(settings: object, feed: Path, limit: int = 12) -> Issue:
    from cepletter.sources.reader import adhoc_source, read_items

    items = read_items([adhoc_source(str(feed))], None)[:limit]
    assert items, f"no items read from {feed.name}"
    issue = Issue(
        id="2025-12", title="Newsletter from a real feed", subject="A real feed", date=items[0].date.date()
        if items[0].date else __import__("datetime").date(2025, 12, 1),
        preheader="Items straight from a feed", intro="Items from a real-world feed.",
        sections=[Section("From the feed", [IssueItem.from_item(i) for i in items])],
    )
    save(issue, settings.issues_dir / "2025-12" / "issue.md")  # type: ignore[attr-defined]
    return issue


@pytest.mark.parametrize("name", [
    "wordpress-dcrainmaker-very-long-items.rss.xml",
    "rss-scriptingnews-untitled-items.xml",
])
def test_real_feeds_render_into_a_sound_email(tmp_path: Path, corpus: Path, name: str) -> None:
    settings = make_workspace(tmp_path / "ws")
    issue = _issue_from_feed(settings, corpus / name)
    html, text = render_personal(settings, issue).fill(Recipient("anna@example.org", "Anna"))
    root = lxml_html.document_fromstring(html)
    cards = root.xpath("//table[contains(concat(' ', @class, ' '), ' card ')]")
    assert len(cards) == len(issue.items)
    for item in issue.items:
        assert item.title.strip()
        assert item.title in root.text_content()
    # nothing from the feed can widen the layout: no fixed widths, tables or images in summaries
    for summary in root.xpath("//div[contains(@class, 'summary')]"):
        assert not summary.xpath(".//img | .//table | .//iframe | .//*[@width] | .//script")
    assert re.search(r"Read more: https?://", text)
    findings = [f for f in check_html(html, {"https://example.org/unsubscribe?email=anna@example.org&list=cep"})
                if f.code in ("link", "placeholder", "unsubscribe")]
    assert findings == []
