"""Broken issue files, settings, subscriber lists and templates, through the commands.

Each is a clear error (one "Error:" line naming the file and the key, line or
row, then one hint line), exit 1, no traceback and no file left half written;
or, where the input is merely odd, a safe result.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from conftest import Invoke
from deliverykit import make_workspace

from cepletter import config as config_module

ISSUE = Path("issues/2025-12/issue.md")
BUILD = Path("issues/2025-12/build")


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_clean_error(result: Any, *fragments: str) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    after = lines[lines.index(errors[0]) + 1:]
    assert len(after) <= 1 and all(line.startswith("  ") for line in after), result.stderr  # at most one hint
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


# ---------------------------------------------------------------- issue files

ISSUE_DAMAGE = [
    pytest.param("title: December 2025", "title: 'unclosed", "invalid YAML", id="invalid-yaml"),
    pytest.param("date: 2025-12-01\n", "", "date: missing", id="missing-key"),
    pytest.param("title: December 2025\n", "title: December 2025\nauthor: me\n", "author: unknown key",
                 id="extra-key"),
    pytest.param("    source: news\n", "    source: news\n    colour: red\n", "colour: unknown key",
                 id="extra-item-key"),
    pytest.param("subject: Newsletter December 2025", "subject: [a, b]", "subject: expected text",
                 id="wrong-type"),
    pytest.param("date: 2025-12-01", "date: next tuesday", "'next tuesday' is not a date", id="bad-date"),
    pytest.param("- heading: News\n", "- heading: Empty\n  items: []\n- heading: News\n", "has no items",
                 id="section-without-items"),
    pytest.param("  - id: https://example.org/news/1\n", "  - id: https://example.org/news/0\n", "duplicate id",
                 id="duplicate-item-ids"),
    pytest.param("link: https://example.org/news/2", "link: javascript:alert(1)", "is not an http(s) link",
                 id="javascript-link"),
    pytest.param("link: https://example.org/news/2", "link: /news/2", "is not an http(s) link", id="relative-link"),
    pytest.param("link: https://example.org/news/2", "link: JaVaScRiPt:alert(1)", "is not an http(s) link",
                 id="mixed-case-javascript-link"),
    pytest.param("sections:\n", "sections: 3\nx:\n", "", id="sections-not-a-list"),
]


@pytest.mark.parametrize(("old", "new", "message"), ISSUE_DAMAGE)
@pytest.mark.parametrize("command", [["preview"], ["check"], ["send", "--dry-run"], ["export", "--format", "eml"]])
def test_a_broken_issue_file_is_a_clear_error_and_nothing_is_written(
        tmp_path: Path, run: Invoke, old: str, new: str, message: str, command: list[str]) -> None:
    ws = make_workspace(tmp_path / "ws")
    text = (ws / ISSUE).read_text(encoding="utf-8")
    assert old in text
    (ws / ISSUE).write_text(text.replace(old, new, 1), encoding="utf-8")
    before = files_of(ws)
    result = run("-C", str(ws), *command, "2025-12")
    assert_clean_error(result, "issue.md", message)
    assert files_of(ws) == before  # no build folder, no journal, no partial export


@pytest.mark.parametrize("content", [
    pytest.param(b"", id="empty"),
    pytest.param(b"# Just Markdown\n\nNo front matter.\n", id="no-front-matter"),
    pytest.param(b"---\n---\n", id="empty-front-matter"),
    pytest.param(b"---\n- a\n- b\n---\n", id="front-matter-a-list"),
    pytest.param(bytes(random.Random(6).getrandbits(8) for _ in range(2048)), id="binary"),
    pytest.param(b"\xff\xfe---\x00t\x00", id="utf16-bytes"),
    pytest.param(b"---\ntitle: &a [*a, *a, *a]\n---\n", id="yaml-alias-loop"),
    pytest.param(b"---\ntitle: !!python/object/apply:os.system ['echo PWNED']\n---\n", id="yaml-python-tag"),
])
def test_an_issue_file_that_is_not_one_is_a_clear_error(tmp_path: Path, run: Invoke, content: bytes) -> None:
    ws = make_workspace(tmp_path / "ws")
    (ws / ISSUE).write_bytes(content)
    result = run("-C", str(ws), "preview", "2025-12")
    assert_clean_error(result, "issue.md")
    assert "PWNED" not in result.stdout + result.stderr
    assert not (ws / BUILD).exists()


# ---------------------------------------------------------------- settings

BASE: dict[str, Any] = {
    "newsletter": {
        "name": "CEP Newsletter", "from": "CEP <newsletter@example.org>", "reply_to": "communications@example.org",
        "web_url": "https://example.org/newsletter/", "unsubscribe_url": "https://example.org/u?e={email}",
        "unsubscribe_mailto": "unsubscribe@example.org", "postal_address": "CEP, Utrecht", "language": "en",
        "timezone": "Europe/Brussels", "list_id": "news.example.org",
        "utm": {"source": "newsletter", "medium": "email", "campaign": "{issue}"},
    },
    "sources": [{"name": "news", "path": "news.xml", "kind": "feed"}],
    "delivery": {"transport": "smtp", "maildir": "outbox", "subscribers": "subscribers.csv",
                 "suppressed": "suppressed.csv", "rate": 10, "connections": 2, "retries": 5, "retry_max_seconds": 600},
    "smtp": {"host": "127.0.0.1", "port": 2525, "security": "none", "username": "newsletter", "ca_file": "ca.pem",
             "timeout": 30},
    "fetch": {"timeout": 20, "max_bytes": 1000000, "max_redirects": 5, "max_items": 100},
}


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def to_toml(data: dict[str, Any]) -> str:
    out: list[str] = []
    for table, body in data.items():
        if isinstance(body, list):
            for entry in body:
                out.append(f"[[{table}]]")
                out += [f"{k} = {toml_value(v)}" for k, v in entry.items()]
            continue
        if not isinstance(body, dict):
            out.append(f"{table} = {toml_value(body)}")
            continue
        out.append(f"[{table}]")
        out += [f"{k} = {toml_value(v)}" for k, v in body.items() if not isinstance(v, dict)]
        for sub, inner in body.items():
            if isinstance(inner, dict):
                out.append(f"[{table}.{sub}]")
                out += [f"{k} = {toml_value(v)}" for k, v in inner.items()]
    return "\n".join(out) + "\n"


def wrong_value(types: tuple[type, ...]) -> Any:
    if dict in types:
        return "a string"
    if float in types:
        return "fast"
    if int in types:
        return 2.5
    return 12


SCHEMAS = [("newsletter", config_module._NEWSLETTER), ("newsletter.utm", config_module._UTM),
           ("sources", config_module._SOURCE), ("delivery", config_module._DELIVERY),
           ("smtp", config_module._SMTP), ("fetch", config_module._FETCH)]
EVERY_KEY = [pytest.param(table, key, spec[0], id=f"{table}.{key}") for table, schema in SCHEMAS for key, spec in schema.items()]


def settings_with(table: str, key: str, value: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(BASE))
    if table == "newsletter.utm":
        data["newsletter"]["utm"][key] = value
    elif table == "sources":
        data["sources"][0][key] = value
    else:
        data[table][key] = value
    return data


def workspace_with(tmp_path: Path, text: str | bytes) -> Path:
    ws = make_workspace(tmp_path / "ws")
    path = ws / "cepletter.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    (ws / "news.xml").write_text('<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
                                 "<link>https://example.org/</link></channel></rss>", encoding="utf-8")
    return ws


def test_the_base_settings_of_these_tests_are_good(tmp_path: Path, run: Invoke) -> None:
    ws = workspace_with(tmp_path, to_toml(BASE))
    result = run("-C", str(ws), "items")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("0 items (since 2025-12-01")


@pytest.mark.parametrize(("table", "key", "types"), EVERY_KEY)
def test_every_setting_with_a_value_of_the_wrong_type_is_named(
        tmp_path: Path, run: Invoke, table: str, key: str, types: tuple[type, ...]) -> None:
    value = wrong_value(types)
    ws = workspace_with(tmp_path, to_toml(settings_with(table, key, value)))
    result = run("-C", str(ws), "items")
    assert_clean_error(result, "cepletter.toml, line ", f"[{table}] {key}: expected ", f"got {value!r}")


@pytest.mark.parametrize(("table", "key", "value", "message"), [
    ("newsletter", "timezone", "Mars/Base", "unknown time zone 'Mars/Base'"),
    ("newsletter", "timezone", "../../etc/passwd", "unknown time zone"),
    ("newsletter", "web_url", "javascript:alert(1)", "is not a full http or https address"),
    ("newsletter", "web_url", "example.org/newsletter", "is not a full http or https address"),
    ("newsletter", "unsubscribe_url", "https://example.org/u?e={emial}", "unknown placeholder {emial}"),
    ("newsletter", "unsubscribe_url", "https://example.org/u?e={email.__class__}", "unknown placeholder"),
    ("newsletter", "unsubscribe_url", "data:text/html,x", "is not a full http or https or mailto address"),
    ("sources", "kind", "rss", "'rss' is not one of"),
    ("delivery", "transport", "pigeon", "'pigeon' is not one of"),
    ("delivery", "rate", 0, "must be more than 0"),
    ("delivery", "rate", -3.5, "must be more than 0"),
    ("delivery", "connections", 0, "must be between 1 and 50"),
    ("delivery", "connections", 99, "must be between 1 and 50"),
    ("delivery", "retries", -1, "must not be negative"),
    ("smtp", "security", "tls", "'tls' is not one of"),
    ("smtp", "port", 0, "is not a port number"),
    ("smtp", "port", 70000, "is not a port number"),
    ("smtp", "timeout", 0, "must be more than 0 seconds"),
    ("fetch", "timeout", -1, "must be more than 0"),
    ("fetch", "max_bytes", 0, "must be more than 0"),
    ("fetch", "max_items", -1, "must be more than 0"),
    ("fetch", "max_redirects", -1, "must not be negative"),
    ("newsletter", "colour", "red", "unknown key"),
    ("smtp", "password", "hunter2", "[smtp] password: unknown key"),
])
def test_every_setting_with_a_wrong_value_is_named(
        tmp_path: Path, run: Invoke, table: str, key: str, value: Any, message: str) -> None:
    ws = workspace_with(tmp_path, to_toml(settings_with(table, key, value)))
    result = run("-C", str(ws), "items")
    assert_clean_error(result, "cepletter.toml", f"[{table}] {key}", message)


@pytest.mark.parametrize(("text", "message"), [
    pytest.param(b"", "[newsletter]: missing required table", id="empty"),
    pytest.param(b"[newsletter\nname = 1\n", "(at line 1, column 12)", id="toml-syntax"),
    pytest.param(b"\xff\xfe[\x00n\x00", "not UTF-8 text", id="utf16"),
    pytest.param(bytes(random.Random(7).getrandbits(8) for _ in range(1024)), "cepletter.toml", id="binary"),
    pytest.param(b'colour = "red"\n', "colour: unknown table or key", id="unknown-top-level"),
    pytest.param(b'[newsletter]\nname = "N"\n', "[newsletter] from: missing required key", id="missing-from"),
    pytest.param(to_toml({**BASE, "smtp": None}).replace("smtp = null\n", "").encode(),
                 '[smtp]: missing, but [delivery] transport = "smtp"', id="smtp-transport-without-smtp"),
    pytest.param(to_toml({**BASE, "sources": [{"name": "a", "path": "a.xml"}, {"name": "a", "path": "b.xml"}]}).encode(),
                 "two sources are named 'a'", id="duplicate-source-names"),
    pytest.param(to_toml({**BASE, "sources": [{"name": "a", "path": "a.xml", "url": "https://example.org/f"}]}).encode(),
                 "needs exactly one of url or path", id="url-and-path"),
    pytest.param(to_toml({**BASE, "sources": "news.xml"}).encode(), "sources", id="sources-not-tables"),
])
def test_a_settings_file_that_cannot_be_read_is_a_clear_error(
        tmp_path: Path, run: Invoke, text: bytes, message: str) -> None:
    ws = workspace_with(tmp_path, text)
    result = run("-C", str(ws), "items")
    assert_clean_error(result, message)


@pytest.mark.parametrize(("maildir", "message"), [
    pytest.param("subscribers.csv", "[delivery] maildir is a file, not a folder", id="a-file"),
    pytest.param("", "[delivery] maildir is a folder with other files, not a Maildir", id="the-workspace"),
    pytest.param("issues", "[delivery] maildir is a folder with other files, not a Maildir", id="issues-folder"),
])
def test_a_maildir_setting_that_points_at_other_files_stops_before_writing(
        tmp_path: Path, run: Invoke, maildir: str, message: str) -> None:
    ws = make_workspace(tmp_path / "ws", toml_extra=f'[delivery]\nmaildir = "{maildir}"\n')
    def files() -> set[Path]:
        # cepletter's own cache folder (the inlined page) may appear; nothing else may.
        return {p for p in ws.rglob("*") if "send-log" not in p.name and ".send.lock" not in p.name
                and ".cepletter-cache" not in p.relative_to(ws).parts}

    before = files()
    result = run("-C", str(ws), "send", "--yes")
    assert_clean_error(result, message)
    assert files() == before  # no tmp/, new/ or cur/ scattered among the user's files


def test_a_from_address_that_is_not_one_stops_the_send(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    config = ws / "cepletter.toml"
    config.write_text(config.read_text(encoding="utf-8").replace('"CEP <newsletter@example.org>"', '"CEP"'),
                      encoding="utf-8")
    result = run("-C", str(ws), "send", "--yes")
    assert_clean_error(result, "[newsletter] from: 'CEP' is not an email address")
    assert not (ws / "outbox").exists()


# ---------------------------------------------------------------- subscriber lists


@pytest.mark.parametrize(("content", "fragments"), [
    pytest.param(b"name,city\nAnna,Utrecht\n", ("subscribers.csv, line 1: no email column", "(name, city)"),
                 id="no-email-column"),
    pytest.param(b"\x1b[2J\x1b[31mname\x07,city\nAnna,Utrecht\n", ("no email column",), id="escape-codes-in-header"),
    pytest.param(bytes(random.Random(8).getrandbits(8) for _ in range(4096)).replace(b"@", b""),
                 ("subscribers.csv",), id="binary"),
])
def test_a_subscriber_list_without_addresses_is_a_clear_error(
        tmp_path: Path, run: Invoke, content: bytes, fragments: tuple[str, ...]) -> None:
    ws = make_workspace(tmp_path / "ws")
    (ws / "subscribers.csv").write_bytes(content)
    result = run("-C", str(ws), "send", "--yes")
    assert_clean_error(result, *fragments)
    # Control characters from the file never reach the terminal.
    assert not any(ord(c) < 32 and c not in "\n\t" for c in result.stderr)
    assert not (ws / "outbox").exists()


def test_an_empty_subscriber_list_sends_nothing(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws", subscribers="")
    result = run("-C", str(ws), "send", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "Nothing to send" in result.stderr
    assert "to send  0" in result.stdout
    assert not (ws / "outbox").exists()


@pytest.mark.slow
def test_a_hundred_thousand_rows_with_a_tenth_invalid(tmp_path: Path, run: Invoke) -> None:
    rows = ["email;name"]
    for i in range(100_000):
        address = f"broken-{i}@" if i % 10 == 3 else f"reader{i}@example.org"
        rows.append(f"{address};Reader {i}")
    ws = make_workspace(tmp_path / "ws", subscribers="\n".join(rows) + "\n")
    result = run("-C", str(ws), "send", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "Dry run: built 90,000 messages" in result.stderr
    assert "to send  90,000" in result.stdout
    assert "10,000 invalid" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 10_000
    # Each invalid row is named by its line in the file (header = line 1).
    assert warnings[0] == ("warning: subscribers.csv, line 5: 'broken-3@' skipped: "
                           "There must be something after the @-sign.")
    assert not (ws / "outbox").exists()


# ---------------------------------------------------------------- templates


@pytest.mark.parametrize(("name", "source", "fragments"), [
    pytest.param("newsletter.html.j2", "<html>{% if %}broken</html>",
                 ("templates/newsletter.html.j2, line 1", "Expected an expression"), id="syntax-error"),
    pytest.param("newsletter.txt.j2", "Hello\n\n{% for x in %}\n",
                 ("templates/newsletter.txt.j2, line 3",), id="syntax-error-text-template"),
    pytest.param("newsletter.html.j2", "<html><body>{{ no_such_variable }}</body></html>",
                 ("templates/newsletter.html.j2, line 1", "'no_such_variable' is undefined"), id="unknown-variable"),
    pytest.param("newsletter.html.j2", '<html>{% include "newsletter.html.j2" %}</html>',
                 ("templates/newsletter.html.j2", "include or call each other without end"), id="include-itself"),
    pytest.param("newsletter.html.j2", '{% extends "newsletter.html.j2" %}',
                 ("templates/newsletter.html.j2", "without end"), id="extends-itself"),
    pytest.param("newsletter.html.j2", '<html>{% include "../cepletter.toml" %}</html>',
                 ("template '../cepletter.toml' not found",), id="include-outside"),
    pytest.param("newsletter.html.j2", "<!-- nothing but a comment -->",
                 ("newsletter.html.j2: the template produced no HTML",), id="no-html"),
    pytest.param("newsletter.html.j2", "   \n", ("newsletter.html.j2: the template produced an empty page",),
                 id="empty"),
])
def test_a_broken_template_is_a_clear_error_and_no_build_is_left(
        tmp_path: Path, run: Invoke, name: str, source: str, fragments: tuple[str, ...]) -> None:
    ws = make_workspace(tmp_path / "ws")
    (ws / "templates").mkdir()
    (ws / "templates" / name).write_text(source, encoding="utf-8")
    for command in (["preview"], ["send", "--dry-run"]):
        result = run("-C", str(ws), *command, "2025-12")
        assert_clean_error(result, *fragments)
    assert not (ws / BUILD).exists()


def test_mutual_includes_are_caught(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    (ws / "templates").mkdir()
    (ws / "templates" / "newsletter.html.j2").write_text('<html>{% include "a.html.j2" %}</html>', encoding="utf-8")
    (ws / "templates" / "a.html.j2").write_text('{% include "b.html.j2" %}', encoding="utf-8")
    (ws / "templates" / "b.html.j2").write_text('{% include "a.html.j2" %}', encoding="utf-8")
    result = run("-C", str(ws), "preview", "2025-12")
    assert_clean_error(result, "include or call each other without end")


# ---------------------------------------------------------------- odd command-line values


def test_an_archive_folder_that_cannot_be_written_is_a_clear_error(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    target = ws / "subscribers.csv" / "site"  # a folder inside a file
    result = run("-C", str(ws), "archive", "-o", str(target))
    assert_clean_error(result, str(ws / "subscribers.csv"), "cannot write")


def test_a_huge_number_of_days_means_everything(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    (ws / "cepletter.toml").write_text((ws / "cepletter.toml").read_text(encoding="utf-8")
                                       + '[[sources]]\nname = "news"\npath = "news.xml"\n', encoding="utf-8")
    (ws / "news.xml").write_text('<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
                                 "<link>https://example.org/</link></channel></rss>", encoding="utf-8")
    result = run("-C", str(ws), "items", "--days", "99999999999")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("0 items (since 1900-01-01")


def test_a_hand_edited_issue_with_hostile_intro_and_summaries_renders_inert(tmp_path: Path, run: Invoke) -> None:
    from htmlsafety import tags_of

    ws = make_workspace(tmp_path / "ws")
    text = (ws / ISSUE).read_text(encoding="utf-8")
    text = text.replace(
        "summary: <p>Summary of item 0, with <b>bold</b> text.</p>",
        "summary: '<p onclick=\"PWNED()\">Kept zero <script>PWNED</script><a href=\"javascript:PWNED()\">js</a>"
        "<img src=x onerror=PWNED><iframe src=https://evil.example/PWNED></iframe>"
        "<div style=\"x:expression(PWNED)\">d</div></p>'")
    text = text.replace(
        "summary: <p>Summary of item 1, with <b>bold</b> text.</p>",
        "summary: '[md](javascript:PWNED()) ![img](data:image/png;base64,PWNED) Kept one {{ recipient.email }}'")
    text = text.replace(
        "Welcome to the **December** issue.",
        "Welcome [x](javascript:PWNED()) [y](JAVASCRIPT:PWNED) [z](vbscript:PWNED) ![i](data:x/PWNED) "
        "<script>PWNED</script> <img src=x onerror=PWNED> <a href=\"javascript:PWNED\">raw</a> "
        "[ok](https://example.org/ok) {{ 7*7 }}")
    (ws / ISSUE).write_text(text, encoding="utf-8")
    result = run("-C", str(ws), "preview", "2025-12")
    assert result.exit_code == 0, result.stderr
    html = (ws / BUILD / "newsletter.html").read_text(encoding="utf-8")
    body = html.split("<body", 1)[1]
    for tag, attrs in tags_of(body):
        assert tag not in {"script", "iframe", "object", "embed", "form", "svg", "style"}, tag
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name)
            if name in ("href", "src"):
                assert (value or "").split(":", 1)[0].lower() in ("http", "https", "mailto"), value
            if name == "style":
                assert "expression" not in (value or "") and "javascript" not in (value or "").lower()
    assert 'href="https://example.org/ok"' in body  # a good link in the intro stays a link
    assert "Kept zero" in body and "Kept one {{ recipient.email }}" in body and "{{ 7*7 }}" in body
