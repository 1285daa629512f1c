"""Crashes and concurrency: a killed sender, two senders at once, a cut journal, a full disk.

The full disk is real where the machine allows it: a small tmpfs over the folder
(see ``smalldisk``); a file-size limit stands in for it otherwise.

The sender runs as a real subprocess (``python -m cepletter``) against a real
SMTP server on 127.0.0.1, and is killed with SIGKILL: no handler runs, so only
what reached the operating system survives.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import Invoke
from deliverykit import make_workspace
from smalldisk import run_on_full_disk
from smtpservers import SmtpServer

from cepletter.deliver.journal import read_lines, read_results

REPO = Path(__file__).resolve().parent.parent
JOURNAL = Path("issues/2025-12/send-log.jsonl")


def smtp_config(port: int, connections: int) -> str:
    return (
        f'[delivery]\ntransport = "smtp"\nrate = 1000\nconnections = {connections}\nretries = 2\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout = 10\n'
    )


def subscribers(n: int) -> str:
    return "email,name\n" + "".join(f"reader{i}@example.org,Reader {i}\n" for i in range(n))


def everyone(n: int) -> set[str]:
    return {f"reader{i}@example.org" for i in range(n)}


def start_send(ws: Path, file_size_limit: int | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}

    def limit_file_size() -> None:
        # A file that may not grow past the limit is how a full disk looks to a
        # writer (the write fails); SIGXFSZ is ignored so the write returns an error.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        assert file_size_limit is not None
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return subprocess.Popen(
        [sys.executable, "-m", "cepletter", "-C", str(ws), "send", "--yes", "--unreviewed"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        preexec_fn=limit_file_size if file_size_limit is not None else None,
    )


def results_in(path: Path) -> int:
    return sum(1 for _ in read_results(path)) if path.exists() else 0


def wait_for_results(path: Path, count: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if results_in(path) >= count:
            return
        if process.poll() is not None:
            raise AssertionError(f"the send ended before {count} results: {process.stderr.read()!r}")  # type: ignore[union-attr]
        time.sleep(0.02)
    raise AssertionError(f"the send did not get to {count} results")


def sent_lines(path: Path) -> Counter[str]:
    return Counter(e["email"] for e in read_results(path) if e["status"] == "sent")


def test_sigkill_at_random_moments_several_times_then_resume(tmp_path: Path, run: Invoke) -> None:
    n, connections, kills = 240, 3, 4
    rng = random.Random(20251201)
    with SmtpServer(delay=0.01) as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_config(server.port, connections),
                            subscribers=subscribers(n))
        journal = ws / JOURNAL
        for _ in range(kills):
            process = start_send(ws)
            wait_for_results(journal, results_in(journal) + rng.randint(5, 30), process)
            time.sleep(rng.uniform(0, 0.05))  # somewhere between two results, or in the middle of one
            process.send_signal(signal.SIGKILL)
            process.communicate()
            assert process.returncode == -signal.SIGKILL
        assert len(server.received_by()) < n, "the kills came too late to interrupt anything"
        resumed = run("-C", str(ws), "send", "--yes", "--unreviewed")
        assert resumed.exit_code == 0, resumed.stderr
        assert "already sent" in resumed.stderr
    received = server.received_by()
    assert set(received) == everyone(n)  # nobody missed
    duplicates = sum(count - 1 for count in received.values())
    assert duplicates <= connections * kills  # at most the messages in flight at each kill
    # Every "sent" line is a message the server has; no address is journaled as sent twice.
    lines = sent_lines(journal)
    assert set(lines) == set(received) and max(lines.values()) == 1
    # Every killed run left a readable journal: whole lines parse, a cut one is alone on its line.
    for raw in journal.read_bytes().splitlines():
        if raw.startswith(b'{"email"') and raw.endswith(b"}"):
            assert isinstance(json.loads(raw), dict)


def test_two_sends_of_one_issue_at_once_only_one_sends(tmp_path: Path) -> None:
    n = 40
    # The winner needs about 4 s (one connection, 0.1 s a message): far longer than the loser takes to start.
    with SmtpServer(delay=0.1) as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_config(server.port, 1), subscribers=subscribers(n))
        first, second = start_send(ws), start_send(ws)
        outputs = [p.communicate(timeout=120) for p in (first, second)]
    codes = sorted(p.returncode for p in (first, second))
    assert codes == [0, 1], outputs
    loser_err = next(err for p, (_, err) in zip((first, second), outputs, strict=True) if p.returncode == 1)
    text = loser_err.decode()
    assert "Error: another `cepletter send` of issue 2025-12 is running (process " in text
    assert "could mail people twice" in text and "Traceback" not in text
    assert server.received_by() == dict.fromkeys(everyone(n), 1)
    starts = [e for e in read_lines(ws / JOURNAL) if e.get("event") == "start"]
    assert len(starts) == 1  # the refused run never touched the journal


@pytest.mark.parametrize("damage", [
    pytest.param(lambda line: line[: len(line) // 2], id="line-cut-in-half"),
    pytest.param(lambda line: line[:-2], id="closing-brace-missing"),
    pytest.param(lambda line: b"\x00" * len(line), id="zeros-after-a-power-cut"),
])
def test_a_journal_whose_last_line_was_cut_is_read_correctly(tmp_path: Path, run: Invoke, damage) -> None:  # type: ignore[no-untyped-def]
    n = 8
    with SmtpServer() as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_config(server.port, 2), subscribers=subscribers(n))
        assert run("-C", str(ws), "send", "--yes", "--unreviewed").exit_code == 0
        journal = ws / JOURNAL
        # Keep the run's lines up to its last result and damage that one, as a kill mid-write would.
        lines = journal.read_bytes().splitlines(keepends=True)
        last = max(i for i, raw in enumerate(lines) if b'"status"' in raw)
        cut_address = json.loads(lines[last])["email"]
        journal.write_bytes(b"".join(lines[:last]) + damage(lines[last]))

        resumed = run("-C", str(ws), "send", "--yes", "--unreviewed")
        assert resumed.exit_code == 0, resumed.stderr
        assert f"Recipients: 1 (list rows {n}: {n - 1} already sent" in resumed.stderr
    received = server.received_by()
    # Only the address whose line was lost is mailed again (it was in flight at the "kill").
    assert received == {a: 2 if a == cut_address else 1 for a in everyone(n)}
    assert sent_lines(journal) == dict.fromkeys(everyone(n), 1)
    # The damaged bytes stay alone on their line; everything after them is whole.
    raw_lines = journal.read_bytes().split(b"\n")
    damaged = [raw for raw in raw_lines if raw and not raw.startswith(b"{")] + [
        raw for raw in raw_lines if raw.startswith(b"{") and not raw.endswith(b"}")]
    assert len(damaged) == 1
    after = raw_lines[raw_lines.index(damaged[0]) + 1:]
    assert all(isinstance(json.loads(raw), dict) for raw in after if raw)


def test_a_journal_that_cannot_grow_stops_sending_at_once(tmp_path: Path, run: Invoke) -> None:
    n, connections = 80, 2
    with SmtpServer(delay=0.005) as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_config(server.port, connections),
                            subscribers=subscribers(n))
        journal = ws / JOURNAL
        # Room for the start line and about ten results: then the "disk" is full.
        process = start_send(ws, file_size_limit=2500)
        _, err_bytes = process.communicate(timeout=120)
        err = err_bytes.decode()
        assert process.returncode == 1, err
        assert f"Error: {journal}: cannot write the delivery journal: File too large; sending stopped" in err
        assert "run `cepletter send` again: it carries on where it stopped" in err
        assert "Traceback" not in err
        recorded = sent_lines(journal)
        received = server.received_by()
        assert 0 < len(recorded) < n
        # It stopped at once: beyond what the journal holds, only messages already in flight went out.
        assert set(recorded) <= set(received)
        assert len(set(received) - set(recorded)) <= connections
        assert journal.stat().st_size <= 2500

        resumed = run("-C", str(ws), "send", "--yes", "--unreviewed")
        assert resumed.exit_code == 0, resumed.stderr
    final = server.received_by()
    assert set(final) == everyone(n)
    assert sum(count - 1 for count in final.values()) <= connections
    assert set(sent_lines(journal)) == everyone(n)


# ---------------------------------------------------------------- a full disk, for real (tmpfs)


def send_command() -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    return [sys.executable, "-m", "cepletter", "send", "--yes", "--unreviewed"], env


def test_a_full_disk_under_the_send_lock_is_an_error_and_nothing_is_sent(tmp_path: Path) -> None:
    with SmtpServer() as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_config(server.port, 2), subscribers=subscribers(5))
        cache = ws / ".cepletter-cache"
        cache.mkdir()
        command, env = send_command()
        # Before: an internal error from os.pwrite in the lock.
        done = run_on_full_disk(cache, [command[0], *command[1:3], "-C", str(ws), *command[3:]],
                                after=tmp_path / "after", env=env)
    assert done.returncode == 1, done.stderr
    assert (f"Error: {cache}/send-2025-12.lock: cannot write the send lock: the disk is full; nothing was sent"
            in done.stderr)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert server.messages == []
    assert not (ws / JOURNAL).exists()


def test_a_disk_that_fills_up_mid_send_stops_it_and_the_next_run_completes(tmp_path: Path, run: Invoke) -> None:
    n, connections = 60, 2
    with SmtpServer(delay=0.005) as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_config(server.port, connections),
                            subscribers=subscribers(n))
        folder = ws / "issues" / "2025-12"
        command, env = send_command()
        # Two pages left: one for the note in review.jsonl, one for about twenty journal lines.
        done = run_on_full_disk(folder, [command[0], *command[1:3], "-C", str(ws), *command[3:]],
                                after=tmp_path / "after", free=8192, env=env)
        assert done.returncode == 1, done.stderr
        assert (f"Error: {folder / 'send-log.jsonl'}: cannot write the delivery journal: the disk is full; "
                "sending stopped") in done.stderr
        assert "Traceback" not in done.stderr
        journal = done.folder / "send-log.jsonl"
        recorded, received = sent_lines(journal), server.received_by()
        assert 0 < len(recorded) < n
        # It stopped at once: beyond what the journal holds, only messages already in flight went out.
        assert set(recorded) <= set(received) and len(set(received) - set(recorded)) <= connections
        # The disk has room again: the journal is back in place, and the next run finishes the list.
        for name in ("send-log.jsonl", "review.jsonl"):
            (folder / name).write_bytes((done.folder / name).read_bytes())
        resumed = run("-C", str(ws), "send", "--yes", "--unreviewed")
        assert resumed.exit_code == 0, resumed.stderr
    final = server.received_by()
    assert set(final) == everyone(n)
    assert sum(count - 1 for count in final.values()) <= connections
    assert set(sent_lines(ws / JOURNAL)) == everyone(n)
