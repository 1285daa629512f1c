"""`check`: every error and warning class, on crafted HTML and through the command."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from renderkit import make_issue, make_item, make_workspace

from cepletter.issue.file import Section
from cepletter.review.checks import (
    GMAIL_CLIP_BYTES,
    check_content,
    check_html,
    check_placeholders,
    previous_issue_date,
)

UNSUB = "https://example.org/unsubscribe?email=a%40example.org"


def page(body: str) -> str:
    return f'<!DOCTYPE html><html lang="en"><head><title>t</title><style>a {{ color: red }}</style></head>' \
           f"<body>{body}</body></html>"


GOOD = page(f'<a href="https://example.org/x">Article</a><img src="https://example.org/i.jpg" alt="A" width="600">'
            f'<a href="mailto:info@example.org">Mail</a><a href="{UNSUB}">Unsubscribe</a>')


def codes(findings: list) -> list[tuple[str, str]]:
    return [(f.level, f.code) for f in findings]


def test_clean_html_has_no_findings() -> None:
    assert check_html(GOOD, {UNSUB}) == []


@pytest.mark.parametrize(("href", "fragment"), [
    ("", "has an empty address"),
    ("/relative/page", "is relative"),
    ("page.html", "is relative"),
    ("#top", "is relative"),
    ("ftp://example.org/file", "is a ftp: link"),
    ("javascript:alert(1)", "is a javascript: link"),
    ("https:///nohost", "has no host name"),
])
def test_bad_links_are_errors(href: str, fragment: str) -> None:
    findings = check_html(page(f'<a href="{href}">Bad one</a><a href="{UNSUB}">Unsubscribe</a>'), {UNSUB})
    assert codes(findings) == [("error", "link")]
    assert fragment in findings[0].message
    assert "Bad one" in findings[0].message
    assert findings[0].hint


def test_missing_unsubscribe_link_is_an_error() -> None:
    findings = check_html(page('<a href="https://example.org/">Home</a>'), {UNSUB})
    assert codes(findings) == [("error", "unsubscribe")]
    assert "unsubscribe_url" in findings[0].hint


def test_unsubscribe_is_recognised_by_address_or_words() -> None:
    assert check_html(page(f'<a href="{UNSUB}">Opt out</a>'), {UNSUB}) == []
    assert check_html(page('<a href="https://example.org/u">Unsubscribe here</a>'), set()) == []


def test_size_over_gmail_clipping_is_an_error() -> None:
    filler = "<p>" + "x" * (GMAIL_CLIP_BYTES + 10) + "</p>"
    findings = check_html(page(filler + f'<a href="{UNSUB}">Unsubscribe</a>'), {UNSUB})
    assert codes(findings) == [("error", "size")]
    assert "Gmail clips it" in findings[0].message


def test_placeholders_left_are_errors_but_css_braces_are_not() -> None:
    html = page(f'<p>Dear {{{{ recipient.name }}}},</p><p>{{% if x %}}</p><a href="{UNSUB}">Unsubscribe</a>'
                '<a href="https://example.org/u?e={email}">x</a>')
    findings = check_html(html, {UNSUB})
    assert codes(findings).count(("error", "placeholder")) == 3
    messages = " ".join(f.message for f in findings)
    for placeholder in ("'{{ recipient.name }}'", "'{% if x %}'", "'{email}'"):
        assert placeholder in messages
    assert check_placeholders("a { color: red } @media { .x { y: z } }", "css") == []


def test_image_warnings() -> None:
    html = page(f'<img src="http://example.org/a.png"><a href="{UNSUB}">Unsubscribe</a>')
    findings = check_html(html, {UNSUB})
    assert codes(findings) == [("warning", "image-alt"), ("warning", "image-width"), ("warning", "insecure")]
    assert all("http://example.org/a.png" in f.message for f in findings)


def test_http_link_is_a_warning() -> None:
    findings = check_html(page(f'<a href="http://example.org/x">Old site</a><a href="{UNSUB}">Unsubscribe</a>'),
                          {UNSUB})
    assert codes(findings) == [("warning", "insecure")]
    assert "http://example.org/x" in findings[0].message


def test_content_warnings() -> None:
    old = make_item(1, day=date(2025, 9, 1))
    new = make_item(2, day=date(2025, 12, 1))
    findings = check_content("S" * 71, "", [old, new], date(2025, 10, 20))
    assert codes(findings) == [("warning", "preheader"), ("warning", "subject"), ("warning", "stale")]
    assert "71 characters" in findings[1].message
    assert old.title[:40] in findings[2].message and "2025-10-20" in findings[2].message
    assert check_content("Short", "Teaser", [new], date(2025, 10, 20)) == []
    assert check_content("Short", "Teaser", [old], None) == []


def test_previous_issue_date(tmp_path: Path) -> None:
    settings = make_workspace(tmp_path)
    make_issue(settings, "2025-10", issue_date=date(2025, 10, 20))
    make_issue(settings, "2025-12")
    assert previous_issue_date(settings.issues_dir, "2025-12") == date(2025, 10, 20)
    assert previous_issue_date(settings.issues_dir, "2025-10") is None


# ---------------------------------------------------------------- the command

LIST = "email,name\nanna.jansen@example.org,Anna Jansen\n"

def test_check_passes_a_clean_issue(tmp_path: Path, run) -> None:
    settings = make_workspace(tmp_path, subscribers=LIST)
    make_issue(settings)
    result = run("-C", str(tmp_path), "check")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "2025-12: 0 errors, 0 warnings — ready to send." in result.stderr


BAD_FOOTER = """\
<tr><td>
<a href="/about/">About us</a>
<a href="ftp://files.example.org/report.pdf">Report</a>
<img src="http://example.org/logo.png">
<p>{{ '{{' }} recipient.first_name }}</p>
</td></tr>
"""


def test_check_reports_every_class_and_fails(tmp_path: Path, run) -> None:
    settings = make_workspace(tmp_path, subscribers=LIST)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "_footer.html.j2").write_text(BAD_FOOTER, encoding="utf-8")
    make_issue(settings, "2025-10", issue_date=date(2025, 10, 20))
    huge = "<p>" + "Lorem ipsum dolor sit amet. " * 4000 + "</p>"
    items = [make_item(1, day=date(2025, 9, 1), summary=huge), make_item(2)]
    make_issue(settings, "2025-12", preheader="In this issue: Gone", subject="A subject line that goes on and on and on "
               "well past the seventy characters inboxes show", sections=[Section("News", items)])
    result = run("-C", str(tmp_path), "check", "2025-12")
    assert result.exit_code == 1
    out = result.stdout
    for expected in (
        "error: the HTML is", "Gmail clips it",
        "error: link /about/ (“About us”) is relative",
        "error: link ftp://files.example.org/report.pdf (“Report”) is a ftp: link",
        "error: the email has no unsubscribe link",
        "error: the HTML has an unrendered placeholder '{{ recipient.first_name }}'",
        "warning: image http://example.org/logo.png has no alt text",
        "warning: image http://example.org/logo.png has no width",
        "warning: image http://example.org/logo.png is not an https address",
        "warning: the preheader names “Gone”, which is no longer an item of the issue",
        "warning: the subject has 87 characters",
        "warning: item “Item 1: probation practice",
    ):
        assert expected in out, expected
    assert "fix them before sending" in result.stderr
    assert "Traceback" not in result.stderr


def test_strict_fails_on_warnings_only(tmp_path: Path, run) -> None:
    settings = make_workspace(tmp_path, subscribers=LIST)
    make_issue(settings, preheader="In this issue: Gone")
    relaxed = run("-C", str(tmp_path), "check")
    assert relaxed.exit_code == 0
    assert "warning: the preheader names “Gone”" in relaxed.stdout
    assert "0 errors, 1 warning — ready to send." in relaxed.stderr
    strict = run("-C", str(tmp_path), "check", "--strict")
    assert strict.exit_code == 1
    assert "0 errors, 1 warning — fix them before sending." in strict.stderr


def test_check_unknown_issue_is_one_clear_error(tmp_path: Path, run) -> None:
    make_workspace(tmp_path, subscribers=LIST)
    result = run("-C", str(tmp_path), "check", "2031-01")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert "2031-01" in result.stderr and "Traceback" not in result.stderr


def test_check_clients_prints_the_support_report(tmp_path: Path, run) -> None:
    pytest.importorskip("cepletter.review.compat")
    settings = make_workspace(tmp_path, subscribers=LIST)
    make_issue(settings)
    result = run("-C", str(tmp_path), "check", "--clients")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Gmail" in result.stdout and "Outlook" in result.stdout


NO_UNSUBSCRIBE = """\
[newsletter]
name = "CEP Newsletter"
from = "CEP <newsletter@example.org>"
"""


def test_config_without_unsubscribe_fails_the_check(tmp_path: Path, run) -> None:
    make_issue(make_workspace(tmp_path, NO_UNSUBSCRIBE, LIST))
    result = run("-C", str(tmp_path), "check")
    assert result.exit_code == 1
    assert "error: the email has no unsubscribe link" in result.stdout
    assert "Set unsubscribe_url (or unsubscribe_mailto) in cepletter.toml" in result.stdout


def test_unsubscribe_by_mail_is_enough(tmp_path: Path, run) -> None:
    config = NO_UNSUBSCRIBE + 'unsubscribe_mailto = "leave@example.org"\n'
    make_issue(make_workspace(tmp_path, config, LIST))
    result = run("-C", str(tmp_path), "check")
    assert result.exit_code == 0, result.stdout
    assert "0 errors, 0 warnings" in result.stderr
    html = (tmp_path / "issues/2025-12/build/newsletter.html")
    assert not html.exists()  # check does not write build files


# ---------------------------------------------------------------- nothing half-edited goes out

PLACEHOLDER_ERROR = ("error: the intro is still the placeholder that `draft` wrote "
                     "(“Replace these lines with a short introduction…”)")


def _drafted(tmp_path: Path, run) -> Path:
    ws = tmp_path / "ws"
    assert run("init", str(ws)).exit_code == 0
    drafted = run("-C", str(ws), "draft", "--all", "--issue", "2025-12")
    assert drafted.exit_code == 0, drafted.stderr
    return ws


def _write_intro(ws: Path, intro: str = "This month: mental health in probation, and the 2026 calendar.\n") -> None:
    path = ws / "issues" / "2025-12" / "issue.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index("\n---\n", 3) + 5] + "\n" + intro, encoding="utf-8")


def test_the_placeholder_intro_fails_check_even_without_strict(tmp_path: Path, run) -> None:
    ws = _drafted(tmp_path, run)
    for args in (["check"], ["check", "--strict"]):
        result = run("-C", str(ws), *args)
        assert result.exit_code == 1
        assert PLACEHOLDER_ERROR in result.stdout
        assert result.stderr == "2025-12: 1 error, 0 warnings — fix them before sending.\n"
    _write_intro(ws)
    result = run("-C", str(ws), "check", "--strict")
    assert result.exit_code == 0, result.stdout
    assert result.stderr == "2025-12: 0 errors, 0 warnings — ready to send.\n"


def test_the_placeholder_intro_is_never_sent(tmp_path: Path, run) -> None:
    ws = _drafted(tmp_path, run)
    # Left under an intro that was written, it still counts: the issue is half edited.
    _write_intro(ws, "Our own opening line.\n\n_Replace these lines with a short introduction: what stands out._\n")
    message = ("Error: issue 2025-12: the intro is still the placeholder that `draft` wrote "
               "(“Replace these lines with a short introduction…”); nothing was sent\n")
    for args in (["send", "--yes"], ["send", "--test", "me@example.org"]):
        result = run("-C", str(ws), *args)
        assert result.exit_code == 1
        assert result.stderr.startswith(message), result.stderr
    outbox = ws / "outbox"
    assert not outbox.exists() or not any(p.is_file() for p in outbox.rglob("*"))
    assert not (ws / "issues" / "2025-12" / "send-log.jsonl").exists()
    shown = run("-C", str(ws), "preview")
    assert PLACEHOLDER_ERROR in shown.stderr and "Checks     1 error, 0 warnings" in shown.stderr
    _write_intro(ws)
    sent = run("-C", str(ws), "send", "--yes")
    assert sent.exit_code == 0, sent.stderr
    assert len(list((outbox / "new").iterdir())) == 5


FROM_NAME_ONLY = """\
[newsletter]
name = "CEP Newsletter"
from = "CEP Newsletter"
unsubscribe_url = "https://example.org/unsubscribe?t={token}"
"""


@pytest.mark.parametrize(("value", "reason"), [
    ("CEP Newsletter", "no address in it"),
    ("CEP <newsletter@@example.org>", "The part after the @-sign contains invalid characters: '@'"),
    ("CEP <newsletter@example>", "The part after the @-sign is not valid"),
])
def test_a_from_that_is_not_an_address_is_an_error_in_check_and_preview(
        tmp_path: Path, run, value: str, reason: str) -> None:
    make_issue(make_workspace(tmp_path, FROM_NAME_ONLY.replace('"CEP Newsletter"\nunsub', f'"{value}"\nunsub'), LIST))
    error = f"error: cepletter.toml, line 3: [newsletter] from: {value!r} is not an email address ("
    checked = run("-C", str(tmp_path), "check")
    assert checked.exit_code == 1
    assert error in checked.stdout and reason in checked.stdout
    assert 'Write it like from = "CEP <newsletter@example.org>".' in checked.stdout
    shown = run("-C", str(tmp_path), "preview")
    assert shown.exit_code == 0  # the preview is still built, to look at
    assert error in shown.stderr and "Checks     1 error" in shown.stderr


@pytest.mark.parametrize(("content", "expected"), [
    pytest.param(None, "subscribers.csv: subscriber list not found", id="missing"),
    pytest.param("folder", "the subscriber list is a folder, not a file", id="a-folder"),
    pytest.param("name,organisation\nAnna,CEP\n", "subscribers.csv, line 1: no email column in the header row "
                 "(name, organisation)", id="no-email-column"),
    pytest.param("", "the subscriber list subscribers.csv is empty: no header row with an email column", id="empty"),
])
def test_a_subscriber_list_that_cannot_be_used_fails_check(
        tmp_path: Path, run, content: str | None, expected: str) -> None:
    make_issue(make_workspace(tmp_path))
    if content == "folder":
        (tmp_path / "subscribers.csv").mkdir()
    elif content is not None:
        (tmp_path / "subscribers.csv").write_text(content, encoding="utf-8")
    result = run("-C", str(tmp_path), "check")
    assert result.exit_code == 1
    errors = [line for line in result.stdout.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0], result.stdout
    assert result.stderr == "2025-12: 1 error, 0 warnings — fix them before sending.\n"
    shown = run("-C", str(tmp_path), "preview")
    assert "the example recipient (no readable subscriber list)" in shown.stderr


def test_a_subscriber_list_with_no_valid_row_is_a_warning(tmp_path: Path, run) -> None:
    make_issue(make_workspace(tmp_path, subscribers="email,name\nnot an address,Anna\n"))
    result = run("-C", str(tmp_path), "check")
    assert result.exit_code == 0
    assert "warning: the subscriber list subscribers.csv has no valid address (1 row)" in result.stdout


def test_the_preheader_follows_the_items_unless_it_is_set(tmp_path: Path, run) -> None:
    settings = make_workspace(tmp_path, subscribers=LIST)
    first, second = "Mental health in probation", "The 2026 calendar"
    items = [make_item(1), make_item(2)]
    items[0].title, items[1].title = first, second
    issue = make_issue(settings, preheader="", sections=[Section("News", items[:1]), Section("Events", items[1:])])
    shown = run("-C", str(tmp_path), "preview")
    assert f"  Preheader  In this issue: {first}; {second}  (made from the items)\n" in shown.stderr
    from lxml import html as lxml_html

    page = lxml_html.fromstring((tmp_path / "issues/2025-12/build/newsletter.html").read_bytes())
    (hidden,) = page.xpath("//div[contains(@class, 'preheader')]")
    assert hidden.text_content().startswith(f"In this issue: {first}; {second}\u034f")
    # Take the second item out: the preheader follows.
    path = settings.issues_dir / "2025-12" / "issue.md"
    issue.sections = issue.sections[:1]
    from cepletter.issue.file import save

    save(issue, path)
    shown = run("-C", str(tmp_path), "preview")
    assert f"  Preheader  In this issue: {first}  (made from the items)\n" in shown.stderr
    assert "Checks     no problems found" in shown.stderr
    # A preheader set in the file is kept, and one naming an item no longer there is a warning.
    issue.preheader = f"In this issue: {first}; {second}"
    save(issue, path)
    checked = run("-C", str(tmp_path), "check")
    assert checked.exit_code == 0
    assert checked.stdout.splitlines()[0] == (
        f"warning: the preheader names “{second}”, which is no longer an item of the issue")
    assert run("-C", str(tmp_path), "check", "--strict").exit_code == 1
