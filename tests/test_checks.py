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

def test_check_passes_a_clean_issue(tmp_path: Path, run) -> None:
    settings = make_workspace(tmp_path)
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
    settings = make_workspace(tmp_path)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "_footer.html.j2").write_text(BAD_FOOTER, encoding="utf-8")
    make_issue(settings, "2025-10", issue_date=date(2025, 10, 20))
    huge = "<p>" + "Lorem ipsum dolor sit amet. " * 4000 + "</p>"
    items = [make_item(1, day=date(2025, 9, 1), summary=huge), make_item(2)]
    make_issue(settings, "2025-12", preheader="", subject="A subject line that goes on and on and on "
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
        "warning: the issue has no preheader",
        "warning: the subject has 87 characters",
        "warning: item “Item 1: probation practice",
    ):
        assert expected in out, expected
    assert "fix them before sending" in result.stderr
    assert "Traceback" not in result.stderr


def test_strict_fails_on_warnings_only(tmp_path: Path, run) -> None:
    settings = make_workspace(tmp_path)
    make_issue(settings, preheader="")
    relaxed = run("-C", str(tmp_path), "check")
    assert relaxed.exit_code == 0
    assert "warning: the issue has no preheader" in relaxed.stdout
    assert "0 errors, 1 warning — ready to send." in relaxed.stderr
    strict = run("-C", str(tmp_path), "check", "--strict")
    assert strict.exit_code == 1
    assert "0 errors, 1 warning — fix them before sending." in strict.stderr


def test_check_unknown_issue_is_one_clear_error(tmp_path: Path, run) -> None:
    make_workspace(tmp_path)
    result = run("-C", str(tmp_path), "check", "2031-01")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert "2031-01" in result.stderr and "Traceback" not in result.stderr


def test_check_clients_prints_the_support_report(tmp_path: Path, run) -> None:
    pytest.importorskip("cepletter.review.compat")
    settings = make_workspace(tmp_path)
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
    make_issue(make_workspace(tmp_path, NO_UNSUBSCRIBE))
    result = run("-C", str(tmp_path), "check")
    assert result.exit_code == 1
    assert "error: the email has no unsubscribe link" in result.stdout
    assert "Set unsubscribe_url (or unsubscribe_mailto) in cepletter.toml" in result.stdout


def test_unsubscribe_by_mail_is_enough(tmp_path: Path, run) -> None:
    config = NO_UNSUBSCRIBE + 'unsubscribe_mailto = "leave@example.org"\n'
    make_issue(make_workspace(tmp_path, config))
    result = run("-C", str(tmp_path), "check")
    assert result.exit_code == 0, result.stdout
    assert "0 errors, 0 warnings" in result.stderr
    html = (tmp_path / "issues/2025-12/build/newsletter.html")
    assert not html.exists()  # check does not write build files
