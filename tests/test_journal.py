"""The delivery journal: lines, cut lines, uncertain results, the locks, and write failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cepletter.deliver.journal import (
    FAILED,
    SENT,
    UNCERTAIN,
    Journal,
    SendLock,
    is_busy,
    read_results,
    sent_keys,
    uncertain_counts,
)
from cepletter.errors import DeliveryError


def test_results_are_one_json_object_per_line(tmp_path: Path) -> None:
    path = tmp_path / "send-log.jsonl"
    with Journal(path) as journal:
        journal.event("start", unreviewed=True)
        journal.record("a@example.org", SENT, "250 2.0.0 Ok: queued as Q1", message_id="<1@example.org>")
        journal.record("b@example.org", FAILED, "550 5.1.1 No such user", attempts=1)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["event"] == "start" and lines[0]["unreviewed"] is True
    assert lines[1]["email"] == "a@example.org" and lines[1]["status"] == "sent"
    assert lines[1]["reply"] == "250 2.0.0 Ok: queued as Q1"
    assert lines[1]["time"].endswith("Z")
    assert [e["email"] for e in read_results(path)] == ["a@example.org", "b@example.org"]
    assert sent_keys(path) == {"a@example.org"}


def test_each_line_reaches_the_file_before_record_returns(tmp_path: Path) -> None:
    path = tmp_path / "send-log.jsonl"
    journal = Journal(path)
    journal.open()
    try:
        journal.record("a@example.org", SENT, "250 ok")
        # Read through a separate descriptor while the journal is still open.
        assert sent_keys(path) == {"a@example.org"}
    finally:
        journal.close()


def test_a_line_cut_by_a_kill_is_skipped_and_the_next_starts_fresh(tmp_path: Path) -> None:
    path = tmp_path / "send-log.jsonl"
    path.write_text(
        '{"email": "a@example.org", "status": "sent", "time": "t", "reply": "250"}\n'
        '{"email": "b@example.org", "status": "se',
        encoding="utf-8",
    )
    assert sent_keys(path) == {"a@example.org"}
    with Journal(path) as journal:
        journal.record("c@example.org", SENT, "250 ok")
    assert sent_keys(path) == {"a@example.org", "c@example.org"}
    assert path.read_text(encoding="utf-8").splitlines()[-1].startswith('{"email": "c@example.org"')


def test_missing_journal_means_nobody_sent(tmp_path: Path) -> None:
    assert sent_keys(tmp_path / "none.jsonl") == set()


def test_a_journal_that_cannot_be_written_stops_with_a_clear_message(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    journal = Journal(Path("/dev/full"))
    journal.open()
    try:
        with pytest.raises(DeliveryError, match="cannot write the delivery journal: the disk is full; sending stopped"):
            journal.record("a@example.org", SENT, "250 ok")
    finally:
        journal.close()


def test_an_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(DeliveryError, match="cannot write the delivery journal"):
        Journal(blocker / "send-log.jsonl").open()


def test_a_second_lock_on_the_same_issue_is_refused(tmp_path: Path) -> None:
    expected = rf"another `cepletter send` of issue 2025-12 is running \(process {os.getpid()}\)"
    with SendLock(tmp_path, "2025-12"), pytest.raises(DeliveryError, match=expected):
        SendLock(tmp_path, "2025-12").acquire()
    # Released: it can be taken again.
    with SendLock(tmp_path, "2025-12"):
        pass


def test_the_lock_holds_against_another_process(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from cepletter.deliver.journal import SendLock\n"
        "from cepletter.errors import DeliveryError\n"
        "try:\n    SendLock(Path(sys.argv[1]), 'x').acquire()\nexcept DeliveryError as e:\n    print(e); sys.exit(3)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    with SendLock(tmp_path, "x"):
        held = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env)
    free = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env)
    assert held.returncode == 3 and "another `cepletter send` of issue x is running" in held.stdout
    assert free.returncode == 0


def test_uncertain_results_are_counted_until_a_sent_line(tmp_path: Path) -> None:
    path = tmp_path / "send-log.jsonl"
    with Journal(path) as journal:
        journal.record("a@example.org", UNCERTAIN, "connection lost after the whole message was sent")
        journal.record("b@example.org", UNCERTAIN, "connection lost after the whole message was sent")
        journal.record("B@example.org", UNCERTAIN, "protocol error: 251 after the message")
        journal.record("a@example.org", SENT, "250 ok")
    assert uncertain_counts(path) == {"b@example.org": 2}
    assert sent_keys(path) == {"a@example.org"}


def test_the_lock_lives_in_the_folder_given_named_by_issue(tmp_path: Path) -> None:
    cache = tmp_path / ".cepletter-cache"
    with SendLock(cache, "2025-12") as lock:
        assert lock.path == cache / "send-2025-12.lock"
        assert lock.path.read_text(encoding="ascii") == f"{os.getpid()}\n"
        with SendLock(cache, "2026-01"):
            pass  # another issue is another lock


def test_a_journal_being_written_refuses_a_second_writer_even_without_the_lock(tmp_path: Path) -> None:
    # `git clean -fdX` deletes the cache folder and the send lock in it, under a running send;
    # the journal (kept in git) is still held by that send.
    path = tmp_path / "2025-12" / "send-log.jsonl"
    with Journal(path, "2025-12") as journal:
        journal.record("a@example.org", SENT, "250 ok")
        assert is_busy(path)
        with pytest.raises(DeliveryError, match="another `cepletter send` of issue 2025-12 is running"):
            Journal(path, "2025-12").open()
    assert not is_busy(path)
    with Journal(path, "2025-12"):
        pass
