"""The static web archive: index page, issue pages, Atom feed, idempotence, browser."""

from __future__ import annotations

import html
import shutil
import subprocess
import tempfile
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import feedparser
import pytest
from conftest import Invoke, missing
from publishkit import make_issue, make_workspace

from cepletter.config import Settings
from cepletter.issue.file import load, save
from cepletter.issue.folder import issue_path
from cepletter.publish.archive import MANIFEST, build_archive

TITLES = {
    "2025-10": "Newsletter October 2025",
    "2025-12": "Newsletter December 2025",
    "2026-02": "Newsletter February 2026",
}


class Page(HTMLParser):
    """Collects links, headings, <time> values and visible text of a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.links: list[str] = []
        self.h2: list[str] = []
        self.times: list[str] = []
        self.text: list[str] = []
        self.lang: str | None = None
        self._in: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "html":
            self.lang = values.get("lang")
        if tag == "a" and values.get("href"):
            self.links.append(values["href"] or "")
        if tag == "time":
            self.times.append(values.get("datetime") or "")
        self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._in:
            del self._in[len(self._in) - 1 - self._in[::-1].index(tag):]

    def handle_data(self, data: str) -> None:
        if "h2" in self._in and data.strip():
            self.h2.append(data.strip())
        if not {"style", "title"} & set(self._in):
            self.text.append(data)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = make_workspace(tmp_path / "ws")
    make_issue(settings, "2025-10", date(2025, 10, 16), TITLES["2025-10"], items=1)
    make_issue(settings, "2025-12", date(2025, 12, 18), TITLES["2025-12"], items=3)
    make_issue(settings, "2026-02", date(2026, 2, 19), TITLES["2026-02"], preheader="")
    return settings


# What only an email says, never the web archive's page of an issue.
EMAIL_ONLY = ("View in your browser", "You receive this email because", "Unsubscribe", "Dear ")


def stamps(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


def test_index_lists_every_issue_newest_first_with_relative_links(settings: Settings) -> None:
    result = build_archive(settings)
    folder = settings.root / "archive"
    assert result.folder == folder
    assert [i.id for i in result.issues] == ["2026-02", "2025-12", "2025-10"]
    page = Page((folder / "index.html").read_text(encoding="utf-8"))
    assert page.lang == "en"
    assert page.h2 == [TITLES["2026-02"], TITLES["2025-12"], TITLES["2025-10"]]
    assert page.times == ["2026-02-19", "2025-12-18", "2025-10-16"]
    issue_links = [link for link in page.links if link.endswith("/index.html")]
    assert issue_links == ["2026-02/index.html", "2025-12/index.html", "2025-10/index.html"]
    for link in page.links:
        assert "://" not in link and not link.startswith("/"), link
        assert (folder / link.split("#")[0]).is_file() or link.startswith("#"), link
    text = " ".join(page.text)
    assert "19 February 2026" in text and "18 December 2025" in text
    assert "News from probation in Europe" in text
    assert "3 articles" in text and "1 article" in text


def test_issue_pages_are_web_versions_without_personal_data(settings: Settings) -> None:
    build_archive(settings)
    html = (settings.root / "archive" / "2025-12" / "index.html").read_text(encoding="utf-8")
    page = Page(html)
    assert "Newsletter December 2025: story 3 &amp; more" in html
    assert "../index.html" in page.links  # back to the index
    # A web page, not an email someone received: nothing only an email says.
    text = " ".join(" ".join(page.text).split())
    for email_only in EMAIL_ONLY:
        assert email_only not in text, email_only
    assert not [link for link in page.links if "unsubscribe" in link or link.startswith("https://example.org/newsletter/")]
    assert 'class="preheader"' not in html
    assert "Subscribe" not in text  # no subscribe_url is set
    # No recipient values, no template leftovers.
    assert "?email=" not in html and "{email}" not in html and "{{" not in html


def test_cli_archive_pages_link_to_subscribe_when_subscribe_url_is_set(
        settings: Settings, run: Invoke) -> None:
    from cepletter.config import load_settings
    from cepletter.message.personal import render_personal
    from cepletter.message.recipient import Recipient

    config = settings.config_path
    config.write_text(config.read_text(encoding="utf-8").replace(
        "timezone =", 'subscribe_url = "https://example.org/subscribe"\ntimezone ='), encoding="utf-8")
    result = run("-C", str(settings.root), "archive")
    assert result.exit_code == 0, result.stderr
    page = Page((settings.root / "archive" / "2025-12" / "index.html").read_text(encoding="utf-8"))
    text = " ".join(" ".join(page.text).split())
    assert page.links.count("https://example.org/subscribe") == 2  # at the top and in the footer
    assert "Subscribe to the CEP Newsletter" in text
    for email_only in EMAIL_ONLY:
        assert email_only not in text, email_only
    # The email keeps all of it, and has no Subscribe link: its reader is subscribed.
    email, _ = render_personal(load_settings(settings.root), load(issue_path(settings.issues_dir, "2025-12"))).fill(
        Recipient("anna@example.org", "Anna Jansen"))
    mail = Page(email)
    mail_text = " ".join(" ".join(mail.text).split())
    for said in ("View in your browser", "You receive this email because", "Unsubscribe", "Dear Anna Jansen,"):
        assert said in mail_text, said
    assert "https://example.org/subscribe" not in mail.links


def test_a_subscribe_url_that_is_not_an_address_is_named(settings: Settings, run: Invoke) -> None:
    config = settings.config_path
    config.write_text(config.read_text(encoding="utf-8").replace(
        "timezone =", 'subscribe_url = "example.org/subscribe"\ntimezone ='), encoding="utf-8")
    result = run("-C", str(settings.root), "archive")
    assert result.exit_code == 1
    assert "subscribe_url" in result.stderr and "'example.org/subscribe' is not a full" in result.stderr


def test_atom_feed_reads_back_with_feedparser(settings: Settings) -> None:
    build_archive(settings)
    parsed = feedparser.parse(str(settings.root / "archive" / "feed.xml"))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.title == "CEP Newsletter"
    entries = parsed.entries
    assert [e.title for e in entries] == [TITLES["2026-02"], TITLES["2025-12"], TITLES["2025-10"]]
    assert [e.link for e in entries] == [
        "https://example.org/newsletter/2026-02/",
        "https://example.org/newsletter/2025-12/",
        "https://example.org/newsletter/2025-10/",
    ]
    assert [e.id for e in entries] == [e.link for e in entries]
    assert entries[1].summary == "News from probation in Europe"
    assert "story 2 &amp; more" in entries[1].content[0].value
    assert entries[1].published_parsed[:3] == (2025, 12, 18)


def test_without_web_url_links_are_relative_and_ids_stable(tmp_path: Path) -> None:
    settings = make_workspace(tmp_path / "ws", web_url="")
    make_issue(settings, "2025-12", date(2025, 12, 18), TITLES["2025-12"])
    build_archive(settings)
    feed_path = settings.root / "archive" / "feed.xml"
    first = feedparser.parse(feed_path.read_bytes())
    (entry,) = first.entries
    assert entry.link == "2025-12/index.html"
    assert entry.id.startswith("urn:uuid:")
    shutil.rmtree(settings.root / "archive")
    build_archive(settings)
    again = feedparser.parse(feed_path.read_bytes())
    assert again.entries[0].id == entry.id and again.feed.id == first.feed.id


def test_second_run_rewrites_nothing(settings: Settings) -> None:
    build_archive(settings)
    folder = settings.root / "archive"
    before = stamps(folder)
    result = build_archive(settings)
    assert result.written == [] and result.removed == []
    assert len(result.unchanged) == 5  # three pages, index, feed
    assert stamps(folder) == before


def test_an_edit_rewrites_only_what_changed(settings: Settings) -> None:
    build_archive(settings)
    folder = settings.root / "archive"
    before = stamps(folder)
    path = issue_path(settings.issues_dir, "2025-10")
    issue = load(path)
    issue.sections[0].items[0].title = "A corrected story title"
    save(issue, path)
    result = build_archive(settings)
    written = sorted(str(p.relative_to(folder)) for p in result.written)
    assert written == ["2025-10/index.html", "feed.xml"]
    after = stamps(folder)
    assert after["index.html"] == before["index.html"]
    assert after["2025-12/index.html"] == before["2025-12/index.html"]


def test_removes_only_pages_it_made(settings: Settings) -> None:
    folder = settings.root / "archive"
    build_archive(settings)
    (folder / "robots.txt").write_text("User-agent: *\n", encoding="utf-8")
    (folder / "2025-12" / "extra.pdf").write_bytes(b"%PDF")
    shutil.rmtree(settings.issues_dir / "2025-10")
    shutil.rmtree(settings.issues_dir / "2025-12")
    result = build_archive(settings)
    assert sorted(str(p.relative_to(folder)) for p in result.removed) == [
        "2025-10/index.html", "2025-12/index.html"]
    assert not (folder / "2025-10").exists()
    assert (folder / "robots.txt").is_file() and (folder / "2025-12" / "extra.pdf").is_file()
    assert Page((folder / "index.html").read_text(encoding="utf-8")).h2 == [TITLES["2026-02"]]


def test_never_overwrites_a_file_it_did_not_make(settings: Settings, run: Invoke, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<p>the organisation's own page</p>", encoding="utf-8")
    result = run("-C", str(settings.root), "archive", "-o", str(site))
    assert result.exit_code == 1
    assert "index.html already exists and was not made by `cepletter archive`" in result.stderr
    assert "choose an empty folder with -o DIR" in result.stderr
    assert (site / "index.html").read_text(encoding="utf-8") == "<p>the organisation's own page</p>"
    assert not (site / MANIFEST).exists()


def test_cli_archive_reports_what_it_wrote(settings: Settings, run: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = run("-C", str(settings.root), "archive", "-o", str(out))
    assert first.exit_code == 0, first.stderr
    assert f"Archive of 3 issues in {out}: 5 file(s) written, 0 unchanged." in first.stderr
    assert "wrote 2025-12/index.html" in first.stderr
    assert "Upload the folder to https://example.org/newsletter/" in first.stderr
    assert first.stdout == ""
    second = run("-C", str(settings.root), "archive", "-o", str(out))
    assert second.exit_code == 0
    assert "0 file(s) written, 5 unchanged." in second.stderr
    assert "wrote" not in second.stderr
    default = run("-C", str(settings.root), "archive")
    assert default.exit_code == 0
    assert "Archive of 3 issues in archive: 5 file(s) written" in default.stderr


def test_cli_archive_output_is_a_file(settings: Settings, run: Invoke) -> None:
    target = settings.root / "notes.txt"
    target.write_text("x", encoding="utf-8")
    result = run("-C", str(settings.root), "archive", "-o", str(target))
    assert result.exit_code == 2
    assert "is a file" in result.stderr


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def dump_dom(url: str) -> str:
    browser = chromium()
    if browser is None:
        missing("no Chromium on PATH (install chromium to run the browser tests)")
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--dump-dom", url],
            capture_output=True, text=True, timeout=120, check=False,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.browser
def test_browser_opens_the_index_and_an_issue_from_disk(settings: Settings) -> None:
    build_archive(settings)
    folder = settings.root / "archive"
    dom = dump_dom((folder / "index.html").as_uri())
    page = Page(dom)
    assert page.h2 == [TITLES["2026-02"], TITLES["2025-12"], TITLES["2025-10"]]
    issue_dom = dump_dom((folder / "2025-12" / "index.html").as_uri())
    assert "Newsletter December 2025: story 1 &amp; more" in issue_dom
    assert "All issues of CEP Newsletter" in issue_dom


def test_empty_workspace_gives_an_empty_index(tmp_path: Path, run: Invoke) -> None:
    settings = make_workspace(tmp_path / "ws")
    result = run("-C", str(settings.root), "archive")
    assert result.exit_code == 0, result.stderr
    assert "Archive of 0 issues in archive: 2 file(s) written" in result.stderr
    assert "No issues yet." in (settings.root / "archive" / "index.html").read_text(encoding="utf-8")
    assert feedparser.parse(str(settings.root / "archive" / "feed.xml")).entries == []


def test_a_broken_issue_file_stops_the_archive_with_its_name(settings: Settings, run: Invoke) -> None:
    path = issue_path(settings.issues_dir, "2025-12")
    path.write_text(path.read_text(encoding="utf-8").replace("title: Newsletter", "title: [Newsletter"),
                    encoding="utf-8")
    result = run("-C", str(settings.root), "archive")
    assert result.exit_code == 1
    assert "issues/2025-12/issue.md" in result.stderr and "invalid YAML" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (settings.root / "archive").exists()


@pytest.mark.browser
def test_browser_opens_the_example_issue_archive(tmp_path: Path) -> None:
    from cepletter.config import load_settings

    repo = Path(__file__).resolve().parent.parent
    example = repo / "issues" / "2025-12" / "issue.md"
    assert example.is_file(), "the example issue issues/2025-12/issue.md is missing"
    issue = load(example)
    result = build_archive(load_settings(repo), tmp_path / "archive")
    assert "2025-12" in [i.id for i in result.issues]
    index = Page(dump_dom((tmp_path / "archive" / "index.html").as_uri()))
    assert issue.title in index.h2
    page = dump_dom((tmp_path / "archive" / "2025-12" / "index.html").as_uri())
    for item in issue.items:
        assert html.escape(item.title, quote=False) in page, item.title
