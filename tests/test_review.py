"""Review sign-off: content hash, test-send and approval records, `cepletter approve`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from conftest import Invoke
from hypothesis import given
from hypothesis import strategies as st
from publishkit import make_issue, make_workspace

from cepletter.config import Settings, load_settings
from cepletter.errors import IssueError, UsageError
from cepletter.issue.file import load, save
from cepletter.issue.folder import issue_path
from cepletter.message.personal import render_personal
from cepletter.review.signoff import (
    content_hash,
    find_signoff,
    hash_parts,
    record_approval,
    record_test_send,
    review_path,
    send_started,
    signoffs,
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = make_workspace(tmp_path / "ws")
    make_issue(settings, "2025-12", date(2025, 12, 18), "Newsletter December 2025")
    return settings


def digest_of(settings: Settings, issue_id: str = "2025-12") -> str:
    rendered = render_personal(settings, load(issue_path(settings.issues_dir, issue_id)))
    return content_hash(settings, rendered)


def test_hash_parts_covers_each_part_and_keeps_them_apart() -> None:
    base = hash_parts(b"Subject", b"<p>html</p>", b"text")
    assert len(base) == 64 and base == hash_parts(b"Subject", b"<p>html</p>", b"text")
    assert base != hash_parts(b"Subject!", b"<p>html</p>", b"text")
    assert base != hash_parts(b"Subject", b"<p>html!</p>", b"text")
    assert base != hash_parts(b"Subject", b"<p>html</p>", b"text!")
    # Length prefixes: moving characters from one part to the next changes the hash.
    assert hash_parts(b"ab", b"c", b"") != hash_parts(b"a", b"bc", b"")
    assert hash_parts(b"", b"", "é".encode()) != hash_parts(b"", "é".encode(), b"")


def _with_setting(settings: Settings, key: str, value: str) -> Settings:
    """``settings`` with ``[newsletter] key = value`` written into cepletter.toml, loaded again."""
    import re

    path = settings.root / "cepletter.toml"
    text = path.read_text(encoding="utf-8")
    line = f"{key} = {json.dumps(value)}"
    pattern = re.compile(rf"^{key}\s*=.*$", re.MULTILINE)
    text = pattern.sub(line, text, count=1) if pattern.search(text) else text.replace(
        "[newsletter]\n", f"[newsletter]\n{line}\n", 1)
    path.write_text(text, encoding="utf-8")
    return load_settings(settings.root)


@pytest.mark.parametrize(("key", "value", "header"), [
    ("from", "Other Sender <other@example.org>", b"From: Other Sender <other@example.org>"),
    ("reply_to", "replies@elsewhere.example", b"Reply-To: replies@elsewhere.example"),
    ("list_id", "other.example.org", b"List-Id:"),
    ("unsubscribe_url", "https://elsewhere.example/u?e={email}", b"List-Unsubscribe: <https://elsewhere.example/u?e={email}>"),
    ("unsubscribe_mailto", "leave@elsewhere.example", b"<mailto:leave@elsewhere.example?subject=unsubscribe>"),
])
def test_the_hash_covers_the_headers_subscribers_see(settings: Settings, key: str, value: str, header: bytes) -> None:
    from cepletter.message.build import MessageFactory

    before = digest_of(settings)
    changed = _with_setting(settings, key, value)
    rendered = render_personal(changed, load(issue_path(changed.issues_dir, "2025-12")))
    headers = MessageFactory(changed, rendered).reviewed_headers()
    assert header in headers  # the reviewed headers are the factory's, as sent
    assert digest_of(changed) != before
    assert digest_of(changed) == digest_of(changed)


def test_approval_is_found_for_exactly_that_content(settings: Settings) -> None:
    digest = digest_of(settings)
    assert find_signoff(settings, "2025-12", digest) is None
    before = datetime.now(UTC).replace(microsecond=0)
    record_approval(settings, "2025-12", digest, "  Anna   Jansen ", subject="Newsletter December 2025")
    signoff = find_signoff(settings, "2025-12", digest)
    assert signoff is not None
    assert (signoff.kind, signoff.who, signoff.digest, signoff.recipients) == (
        "approval", "Anna Jansen", digest, ())
    assert signoff.when.tzinfo is not None and signoff.when >= before
    assert signoff.describe().startswith("approved by Anna Jansen on ")
    line = json.loads(review_path(settings, "2025-12").read_text(encoding="utf-8"))
    assert line["subject"] == "Newsletter December 2025" and line["by"] == "Anna Jansen"


def test_an_edit_after_approval_needs_a_new_sign_off(settings: Settings) -> None:
    record_approval(settings, "2025-12", digest_of(settings), "Anna Jansen")
    path = issue_path(settings.issues_dir, "2025-12")
    issue = load(path)
    issue.sections[0].items[0].title = "A corrected title"
    save(issue, path)
    assert find_signoff(settings, "2025-12", digest_of(settings)) is None
    # Only the content counts: putting it back makes the old approval valid again.
    issue.sections[0].items[0].title = "Newsletter December 2025: story 1 & more"
    save(issue, path)
    assert find_signoff(settings, "2025-12", digest_of(settings)) is not None


def test_test_send_record_is_found_with_its_recipients(settings: Settings) -> None:
    digest = digest_of(settings)
    record_test_send(settings, "2025-12", digest, ["me@example.org", "boss@example.org"])
    signoff = find_signoff(settings, "2025-12", digest)
    assert signoff is not None
    assert signoff.kind == "test"
    assert signoff.recipients == ("me@example.org", "boss@example.org")
    assert signoff.who
    assert "test sent to me@example.org, boss@example.org by" in signoff.describe()


def test_latest_matching_record_wins(settings: Settings) -> None:
    digest = digest_of(settings)
    record_test_send(settings, "2025-12", digest, ["me@example.org"])
    record_approval(settings, "2025-12", "0" * 64, "Someone Else")
    record_approval(settings, "2025-12", digest, "Anna Jansen")
    signoff = find_signoff(settings, "2025-12", digest)
    assert signoff is not None and signoff.kind == "approval" and signoff.who == "Anna Jansen"
    assert [s.kind for s in signoffs(settings, "2025-12")] == ["test", "approval", "approval"]


def test_a_cut_last_line_and_foreign_lines_are_tolerated(settings: Settings) -> None:
    digest = digest_of(settings)
    record_approval(settings, "2025-12", digest, "Anna Jansen")
    path = review_path(settings, "2025-12")
    with path.open("a", encoding="utf-8") as fh:
        fh.write('["not a record"]\n{"kind": "approval", "digest": "abc"}\n{"kind": "test", "dig')
    assert find_signoff(settings, "2025-12", digest) is not None
    record_test_send(settings, "2025-12", digest, ["me@example.org"])
    lines = path.read_text(encoding="utf-8").splitlines()
    # The cut fragment stays on its own line; the new record is whole on the next.
    assert lines[-2] == '{"kind": "test", "dig'
    assert json.loads(lines[-1])["kind"] == "test"
    found = find_signoff(settings, "2025-12", digest)
    assert found is not None and found.kind == "test"


def test_bad_input_is_a_clear_error(settings: Settings) -> None:
    digest = digest_of(settings)
    with pytest.raises(UsageError, match="--by"):
        record_approval(settings, "2025-12", digest, "   ")
    with pytest.raises(UsageError, match="at least one address"):
        record_test_send(settings, "2025-12", digest, [])
    with pytest.raises(IssueError, match=r"2026-01.*issue.md: not found"):
        record_approval(settings, "2026-01", digest, "Anna Jansen")
    assert not review_path(settings, "2026-01").exists()


def test_cli_approve_records_and_says_what_was_approved(settings: Settings, run: Invoke) -> None:
    result = run("-C", str(settings.root), "approve", "--by", "Anna Jansen")
    assert result.exit_code == 0, result.stderr
    digest = digest_of(settings)
    assert "Approved issue 2025-12 by Anna Jansen: 'Newsletter December 2025 – out now'" in result.stderr
    assert f"(content {digest[:12]})" in result.stderr
    assert "issues/2025-12/review.jsonl" in result.stderr
    assert result.stdout == ""
    signoff = find_signoff(settings, "2025-12", digest)
    assert signoff is not None and signoff.who == "Anna Jansen"
    again = run("-C", str(settings.root), "approve", "2025-12", "--by", "Piet de Vries")
    assert again.exit_code == 0
    assert "This content was already approved by Anna Jansen on " in again.stderr
    assert "Approved issue 2025-12 by Piet de Vries" in again.stderr


def test_cli_approve_needs_a_name(settings: Settings, run: Invoke) -> None:
    missing = run("-C", str(settings.root), "approve", "2025-12")
    assert missing.exit_code == 2
    assert "Missing option '--by'" in missing.stderr
    blank = run("-C", str(settings.root), "approve", "2025-12", "--by", " ")
    assert blank.exit_code == 2
    assert "Error: --by: give the name of the person who approved the issue" in blank.stderr
    assert not review_path(settings, "2025-12").exists()


def test_cli_approve_unknown_issue(settings: Settings, run: Invoke) -> None:
    result = run("-C", str(settings.root), "approve", "2031-01", "--by", "Anna Jansen")
    assert result.exit_code == 1
    assert "Error:" in result.stderr and "2031-01" in result.stderr and "not found" in result.stderr
    assert "Traceback" not in result.stderr


def smtp_workspace(root: Path, port: int) -> Settings:
    make_workspace(root)
    with (root / "cepletter.toml").open("a", encoding="utf-8") as fh:
        fh.write(f'\n[delivery]\ntransport = "smtp"\n\n[smtp]\nhost = "127.0.0.1"\nport = {port}\n'
                 'security = "none"\n')
    (root / "subscribers.csv").write_text(
        "email,name\nada@example.org,Ada\nbob@example.org,Bob\n", encoding="utf-8")
    (root / "suppressed.csv").write_text("email\n", encoding="utf-8")
    return load_settings(root)


def journal_events(settings: Settings, issue_id: str) -> list[dict[str, object]]:
    path = settings.issues_dir / issue_id / "send-log.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_smtp_list_send_needs_a_sign_off(tmp_path: Path, run: Invoke) -> None:
    from smtpservers import SmtpServer

    with SmtpServer() as server:
        settings = smtp_workspace(tmp_path / "ws", server.port)
        make_issue(settings, "2025-12", date(2025, 12, 18), "Newsletter December 2025")
        ws = str(settings.root)

        refused = run("-C", ws, "send", "2025-12", "--yes")
        assert refused.exit_code == 1
        assert "Error: issue 2025-12: this content has not been reviewed" in refused.stderr
        assert "cepletter send --test ADDR" in refused.stderr and "cepletter approve --by NAME" in refused.stderr
        assert server.messages == []

        approved = run("-C", ws, "approve", "2025-12", "--by", "Anna Jansen")
        assert approved.exit_code == 0, approved.stderr
        sent = run("-C", ws, "send", "2025-12", "--yes")
        assert sent.exit_code == 0, sent.stderr
        assert sorted(server.received_by()) == ["ada@example.org", "bob@example.org"]
        start = journal_events(settings, "2025-12")[0]
        assert "approved by Anna Jansen" in str(start.get("signoff"))
        assert "unreviewed" not in start


def test_an_edit_after_approval_is_refused_until_a_test_send(tmp_path: Path, run: Invoke) -> None:
    from smtpservers import SmtpServer

    with SmtpServer() as server:
        settings = smtp_workspace(tmp_path / "ws", server.port)
        make_issue(settings, "2026-02", date(2026, 2, 19), "Newsletter February 2026")
        ws = str(settings.root)
        assert run("-C", ws, "approve", "2026-02", "--by", "Anna Jansen").exit_code == 0
        path = issue_path(settings.issues_dir, "2026-02")
        issue = load(path)
        issue.subject = "Newsletter February 2026 – corrected"
        save(issue, path)
        refused = run("-C", ws, "send", "2026-02", "--yes")
        assert refused.exit_code == 1
        assert "this content has not been reviewed" in refused.stderr
        assert server.messages == []

        tested = run("-C", ws, "send", "2026-02", "--test", "editor@example.org")
        assert tested.exit_code == 0, tested.stderr
        assert [m.recipients for m in server.messages] == [("editor@example.org",)]
        signoff = find_signoff(settings, "2026-02", digest_of(settings, "2026-02"))
        assert signoff is not None and signoff.kind == "test"
        assert signoff.recipients == ("editor@example.org",)

        sent = run("-C", ws, "send", "2026-02", "--yes")
        assert sent.exit_code == 0, sent.stderr
        assert server.received_by() == {"editor@example.org": 1, "ada@example.org": 1, "bob@example.org": 1}


def test_unreviewed_overrides_and_the_journal_says_so(tmp_path: Path, run: Invoke) -> None:
    from smtpservers import SmtpServer

    with SmtpServer() as server:
        settings = smtp_workspace(tmp_path / "ws", server.port)
        make_issue(settings, "2025-12", date(2025, 12, 18), "Newsletter December 2025")
        result = run("-C", str(settings.root), "send", "2025-12", "--yes", "--unreviewed")
        assert result.exit_code == 0, result.stderr
        assert sorted(server.received_by()) == ["ada@example.org", "bob@example.org"]
        start = journal_events(settings, "2025-12")[0]
        assert start.get("event") == "start" and start.get("unreviewed") is True
        # No sign-off was made up: review.jsonl holds only the note that the list was mailed.
        assert signoffs(settings, "2025-12") == []
        assert send_started(settings, "2025-12") is not None


def test_approval_in_one_process_is_valid_in_another(settings: Settings) -> None:
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run(
        [sys.executable, "-m", "cepletter", "-C", str(settings.root), "approve", "--by", "Anna Jansen"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Approved issue 2025-12 by Anna Jansen" in result.stderr
    # Rendering is deterministic: this process computes the same hash for the same content.
    signoff = find_signoff(settings, "2025-12", digest_of(settings))
    assert signoff is not None and signoff.who == "Anna Jansen"


@given(st.tuples(st.binary(max_size=8), st.binary(max_size=8), st.binary(max_size=8)),
       st.tuples(st.binary(max_size=8), st.binary(max_size=8), st.binary(max_size=8)))
def test_different_content_never_shares_a_hash(one: tuple[bytes, bytes, bytes], two: tuple[bytes, bytes, bytes]) -> None:
    assert (hash_parts(*one) == hash_parts(*two)) == (one == two)


@pytest.mark.parametrize(("key", "value"), [
    ("from", "CEP Board <board@example.org>"),
    ("reply_to", "someone-else@example.net"),
    ("list_id", "another-list.example.org"),
])
def test_changing_who_it_is_from_or_where_replies_go_after_approval_needs_a_new_review(
        tmp_path: Path, run: Invoke, key: str, value: str) -> None:
    from smtpservers import SmtpServer

    with SmtpServer() as server:
        settings = smtp_workspace(tmp_path / "ws", server.port)
        make_issue(settings, "2025-12", date(2025, 12, 18), "Newsletter December 2025")
        ws = str(settings.root)
        assert run("-C", ws, "approve", "2025-12", "--by", "Anna Jansen").exit_code == 0
        _with_setting(settings, key, value)
        refused = run("-C", ws, "send", "2025-12", "--yes")
        assert refused.exit_code == 1
        assert "this content has not been reviewed" in refused.stderr
        assert "Reviewed" not in refused.stderr
        assert server.messages == []

        assert run("-C", ws, "approve", "2025-12", "--by", "Anna Jansen").exit_code == 0
        sent = run("-C", ws, "send", "2025-12", "--yes")
        assert sent.exit_code == 0, sent.stderr
        assert "Reviewed:   approved by Anna Jansen" in sent.stderr
        assert sorted(server.received_by()) == ["ada@example.org", "bob@example.org"]
