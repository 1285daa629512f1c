"""`cepletter send` end to end: Maildir, SMTP, review, faults, kill and resume."""

from __future__ import annotations

import email
import json
import mailbox
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from conftest import Invoke
from deliverykit import make_workspace
from faultservers import FaultServer
from smtpservers import Rule, SmtpServer

from cepletter.deliver.journal import SendLock, read_lines, read_results

REPO = Path(__file__).resolve().parent.parent
JOURNAL = Path("issues/2025-12/send-log.jsonl")


def smtp_toml(port: int, extra: str = "") -> str:
    return (
        f'[delivery]\ntransport = "smtp"\nrate = 1000\nconnections = 2\nretries = 2\n{extra}'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout = 10\n'
    )


def outbox(ws: Path) -> list[email.message.Message]:
    return list(mailbox.Maildir(ws / "outbox", factory=None, create=False))


def test_send_to_the_maildir_then_nothing_left_to_send(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws", subscribers=(
        "email,name\nanna@example.org,Anna Jansen\neva@example.org,Eva Novák\n"
        "gone@example.org,Gone\nANNA@example.org,Anna twice\nbroken@,Broken\n"
    ))
    result = run("-C", str(ws), "send", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "Recipients: 2 (list rows 5: 0 already sent, 1 suppressed, 1 duplicates, 1 invalid)" in result.stderr
    assert "subscribers.csv, line 6: 'broken@' skipped" in result.stderr
    assert "Sent 2 of 2" in result.stderr
    assert "delivered  2" in result.stdout and "failed     0" in result.stdout
    messages = outbox(ws)
    assert sorted(str(make_header(decode_header(m["To"]))) for m in messages) == [
        "Anna Jansen <anna@example.org>", "Eva Novák <eva@example.org>"]
    assert all(m["Subject"] == "Newsletter December 2025" for m in messages)
    assert {e["email"] for e in read_results(ws / JOURNAL)} == {"anna@example.org", "eva@example.org"}

    again = run("-C", str(ws), "send", "--yes")
    assert again.exit_code == 0
    assert "Nothing to send" in again.stderr
    assert "skipped 5 2 already sent, 1 suppressed, 1 duplicates, 1 invalid" in " ".join(again.stdout.split())
    assert len(outbox(ws)) == 2


def test_without_a_terminal_or_yes_it_refuses(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    result = run("-C", str(ws), "send")
    assert result.exit_code == 2
    assert "Error: not sending without a confirmation, and there is no terminal to ask on" in result.stderr
    assert "Add --yes" in result.stderr
    assert not (ws / "outbox").exists() and not (ws / JOURNAL).exists()


def test_dry_run_builds_everything_and_sends_nothing(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    result = run("-C", str(ws), "send", "--dry-run")
    assert result.exit_code == 0
    assert "Dry run: built 3 messages" in result.stderr and "nothing sent" in result.stderr
    assert "to send  3" in result.stdout
    assert not (ws / "outbox").exists() and not (ws / JOURNAL).exists()


def test_test_send_is_prefixed_and_not_journaled(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    result = run("-C", str(ws), "send", "--test", "me@example.org", "--test", "colleague@example.org")
    assert result.exit_code == 0, result.stderr
    assert "Test of issue 2025-12 sent to me@example.org, colleague@example.org" in result.stderr
    messages = outbox(ws)
    assert sorted(m["To"] for m in messages) == ["colleague@example.org", "me@example.org"]
    assert all(m["Subject"] == "[TEST] Newsletter December 2025" for m in messages)
    assert not (ws / JOURNAL).exists()
    # The real send afterwards still goes to every subscriber.
    assert run("-C", str(ws), "send", "--yes").exit_code == 0
    assert len(outbox(ws)) == 5


def test_a_bad_test_address_is_a_usage_error(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    result = run("-C", str(ws), "send", "--test", "not an address")
    assert result.exit_code == 2
    assert "--test 'not an address': not a valid email address" in result.stderr


def test_smtp_send_needs_a_review(tmp_path: Path, run: Invoke) -> None:
    with SmtpServer() as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_toml(server.port))
        refused = run("-C", str(ws), "send", "--yes")
        assert refused.exit_code == 1
        assert "Error: issue 2025-12: this content has not been reviewed" in refused.stderr
        assert "cepletter send --test ADDR" in refused.stderr and "--unreviewed" in refused.stderr
        assert server.messages == []

        tested = run("-C", str(ws), "send", "--test", "me@example.org")
        assert tested.exit_code == 0, tested.stderr
        sent = run("-C", str(ws), "send", "--yes")
        assert sent.exit_code == 0, sent.stderr
        assert "Reviewed:   test sent to me@example.org" in sent.stderr
    assert server.received_by() == {
        "me@example.org": 1, "anna@example.org": 1, "eva@example.org": 1, "luca@example.org": 1,
    }
    start = next(read_lines(ws / JOURNAL))
    assert start["event"] == "start" and "test sent to me@example.org" in start["signoff"]


def test_unreviewed_send_is_written_into_the_journal(tmp_path: Path, run: Invoke) -> None:
    with SmtpServer() as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_toml(server.port))
        result = run("-C", str(ws), "send", "--yes", "--unreviewed")
    assert result.exit_code == 0, result.stderr
    assert "Reviewed:   NO (--unreviewed)" in result.stderr
    start = next(read_lines(ws / JOURNAL))
    assert start["event"] == "start" and start["unreviewed"] is True
    assert len(server.messages) == 3


def test_failures_are_named_with_the_server_reply_and_exit_1(tmp_path: Path, run: Invoke) -> None:
    rules = {"eva@example.org": Rule("550"), "luca@example.org": Rule("451")}
    with SmtpServer(rules=rules) as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_toml(server.port, "retry_max_seconds = 1\n"))
        result = run("-C", str(ws), "send", "--yes", "--unreviewed")
    assert result.exit_code == 1
    out = " ".join(result.stdout.split())
    assert "delivered 1" in out and "failed 1" in out and "deferred 1" in out
    assert "eva@example.org failed 550 5.1.1 No such user here" in out
    assert "luca@example.org deferred 451 4.7.1 Try again later" in out
    # The 550 5.1.1 means eva's address is gone: suppressed, not worth another try; the 451 is.
    assert "failed 1 1 added to suppressed.csv" in out
    assert "Added 1 address to suppressed.csv: the server says it does not exist" in result.stderr
    assert "Run `cepletter send` again to retry them" in result.stderr
    assert "retry the failed" not in result.stderr


def test_rate_and_connections_options_show_in_the_confirmation(tmp_path: Path, run: Invoke) -> None:
    with SmtpServer() as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_toml(server.port))
        result = run("-C", str(ws), "send", "--yes", "--unreviewed", "--rate", "50", "--connections", "3")
    assert result.exit_code == 0
    assert f"Transport:  SMTP 127.0.0.1:{server.port} (none), 3 connection(s), 50 messages/s" in result.stderr


def test_bad_options_are_usage_errors(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    assert run("-C", str(ws), "send", "--rate", "0").exit_code == 2
    assert run("-C", str(ws), "send", "--connections", "99").exit_code == 2
    mixed = run("-C", str(ws), "send", "--test", "a@example.org", "--dry-run")
    assert mixed.exit_code == 2 and "--test cannot be combined" in mixed.stderr


def test_a_second_send_at_the_same_time_is_refused(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    with SendLock(ws / ".cepletter-cache", "2025-12"):
        result = run("-C", str(ws), "send", "--yes")
    assert result.exit_code == 1
    assert "Error: another `cepletter send` of issue 2025-12 is running" in result.stderr
    assert not (ws / "outbox").exists()


def test_the_password_is_never_printed_even_with_debug(tmp_path: Path, run: Invoke) -> None:
    secret = "Zq9-very-secret-Zq9"
    with SmtpServer(auth={"newsletter": "something else"}) as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_toml(server.port) + 'username = "newsletter"\n')
        result = run("--debug", "-C", str(ws), "send", "--yes", "--unreviewed",
                     env={"CEPLETTER_SMTP_PASSWORD": secret})
    assert result.exit_code == 1
    assert "refused the login of newsletter: 535" in result.stderr
    assert secret not in result.stdout and secret not in result.stderr


def test_no_password_says_how_to_set_it(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws", toml_extra=smtp_toml(2525) + 'username = "newsletter"\n')
    result = run("-C", str(ws), "send", "--yes", "--unreviewed")
    assert result.exit_code == 1
    assert "Error: no SMTP password for newsletter on 127.0.0.1" in result.stderr
    assert "CEPLETTER_SMTP_PASSWORD" in result.stderr


# ---------------------------------------------------------------- killing the process


def big_list(n: int) -> str:
    rows = ["email,name"] + [f"reader{i}@example.org,Reader {i}" for i in range(n)]
    rows += ["not-an-address,Broken", "READER1@example.org,Duplicate"]
    return "\n".join(rows) + "\n"


def start_send(ws: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    return subprocess.Popen(
        [sys.executable, "-m", "cepletter", "-C", str(ws), "send", "--yes", "--unreviewed"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )


def wait_for_results(path: Path, count: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and sum(1 for _ in read_results(path)) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"the send did not get to {count} results")


@pytest.mark.slow
def test_sigkill_mid_list_then_resume(tmp_path: Path, run: Invoke) -> None:
    n, connections = 300, 2
    with SmtpServer(delay=0.02) as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_toml(server.port), subscribers=big_list(n))
        process = start_send(ws)
        wait_for_results(ws / JOURNAL, 40, process)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert process.returncode == -signal.SIGKILL
        before = len(server.messages)
        assert before < n
        resumed = run("-C", str(ws), "send", "--yes", "--unreviewed")
        assert resumed.exit_code == 0, resumed.stderr
    received = server.received_by()
    assert set(received) == {f"reader{i}@example.org" for i in range(n)}
    duplicates = sum(count - 1 for count in received.values())
    assert duplicates <= connections
    # Every line the killed run wrote is readable; its last may have been cut, the resumed run's are whole.
    sent = [e["email"] for e in read_results(ws / JOURNAL) if e["status"] == "sent"]
    assert set(sent) == set(received)


@pytest.mark.slow
def test_ctrl_c_lets_in_flight_messages_finish_and_exits_130(tmp_path: Path, run: Invoke) -> None:
    n = 300
    with SmtpServer(delay=0.02) as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_toml(server.port), subscribers=big_list(n))
        process = start_send(ws)
        wait_for_results(ws / JOURNAL, 30, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stderr.decode()
        assert b"Interrupted" in stderr
        # The journal is whole: every line parses, and it agrees with the server exactly.
        lines = (ws / JOURNAL).read_text(encoding="utf-8").splitlines()
        assert all(isinstance(json.loads(line), dict) for line in lines)
        sent = [e["email"] for e in read_results(ws / JOURNAL) if e["status"] == "sent"]
        assert sorted(sent) == sorted(server.received_by())
        resumed = run("-C", str(ws), "send", "--yes", "--unreviewed")
        assert resumed.exit_code == 0
    assert server.received_by() == {f"reader{i}@example.org": 1 for i in range(n)}


# ---------------------------------------------------------------- stopping by signal, again and again

STOPS = 20  # stops per way of stopping, each at a random moment
STATUS = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}


def readers(n: int) -> str:
    return "email,name\n" + "".join(f"reader{i}@example.org,Reader {i}\n" for i in range(n))


def results_in(path: Path) -> int:
    """Result lines so far (counted on the bytes: the test polls this while the send runs)."""
    try:
        return path.read_bytes().count(b'"status": ')
    except FileNotFoundError:
        return 0


def wait_until(done: Callable[[], bool], process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while not done():
        if process.poll() is not None:
            raise AssertionError(f"the send ended before {what}: {process.stderr.read()!r}")  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            raise AssertionError(f"the send did not get to {what}")
        time.sleep(0.005)


def assert_journal_is_the_server(journal: Path, server: FaultServer) -> Counter[str]:
    """Every line whole; one "sent" line per message the server took, and no other; nobody twice."""
    assert all(isinstance(json.loads(raw), dict) for raw in journal.read_bytes().splitlines())
    sent = Counter(e["email"] for e in read_results(journal) if e["status"] == "sent")
    received = server.received_by()
    assert sent == received, (sorted(set(received) - set(sent)), sorted(set(sent) - set(received)))
    assert set(received.values()) <= {1}
    return sent


def uncertain_in(journal: Path) -> set[str]:
    sent = {e["email"] for e in read_results(journal) if e["status"] == "sent"}
    return {e["email"] for e in read_results(journal) if e["status"] == "uncertain"} - sent


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_every_stop_signal_finishes_what_is_in_flight_and_the_journal_is_exactly_the_server(
        tmp_path: Path, run: Invoke, how: str) -> None:
    # Ctrl-C, a shutdown or `timeout` (SIGTERM), a closed terminal or SSH session (SIGHUP).
    # Before: SIGTERM and SIGHUP killed the process with up to one accepted message per
    # connection unjournaled, and Ctrl-C lost one about one run in seven.
    n, rng = 800, random.Random(f"stop by {how}")
    with FaultServer(delay=0.004) as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_toml(server.port), subscribers=readers(n))
        journal = ws / JOURNAL
        for _ in range(STOPS):
            process = start_send(ws)
            target = results_in(journal) + rng.randint(1, 12)
            wait_until(lambda: results_in(journal) >= target, process, f"{target} results")  # noqa: B023
            time.sleep(rng.uniform(0, 0.008))  # between two messages, or in the middle of one
            process.send_signal(getattr(signal, how))
            _, err = process.communicate(timeout=60)
            assert process.returncode == STATUS[how], err.decode()
            assert_journal_is_the_server(journal, server)
            stop = list(read_lines(journal))[-1]
            assert stop["event"] == "stop" and stop["signal"] == how and stop["interrupted"] is True
        assert len(server.received_by()) < n, "the stops came too late to interrupt anything"
        resumed = run("-C", str(ws), "send", "--yes", "--unreviewed")
        assert resumed.exit_code == 0, resumed.stderr
        sent = assert_journal_is_the_server(journal, server)
    assert sent == dict.fromkeys(everyone(n), 1)  # nobody missed, nobody twice


@pytest.mark.slow
def test_a_second_ctrl_c_stops_waiting_and_still_journals_every_verdict(tmp_path: Path, run: Invoke) -> None:
    # The server holds its answer to the final dot: the first Ctrl-C waits for it, the
    # second gives up waiting; what was given up is journaled "uncertain", and never on
    # the server (it never answered), so the next run sends it once more, once.
    n, rng = 600, random.Random("double Ctrl-C")
    uncertain_total = 0
    with FaultServer(delay=0.004) as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_toml(server.port), subscribers=readers(n))
        journal = ws / JOURNAL
        for _ in range(STOPS):
            server.release()
            retried = uncertain_in(journal)  # the last run's; this run sends them first
            process = start_send(ws)
            target = results_in(journal) + rng.randint(1, 12)
            wait_until(lambda: results_in(journal) >= target and not uncertain_in(journal) & retried,  # noqa: B023
                       process, f"{target} results")
            server.hold()
            wait_until(lambda: server.held >= 1, process, "a message waiting for its answer")
            time.sleep(rng.uniform(0, 0.02))
            process.send_signal(signal.SIGINT)
            time.sleep(rng.uniform(0.05, 0.3))
            assert process.poll() is None  # the first Ctrl-C waits for the verdicts still to come
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=60)
            assert process.returncode == 130, err.decode()
            assert_journal_is_the_server(journal, server)
            given_up = uncertain_in(journal) - retried
            assert 1 <= len(given_up) <= 2 and not given_up & set(server.received_by())
            assert "the run stopped waiting (the server may have taken it)" in err.decode()
            uncertain_total += len(given_up)
        server.release()
        resumed = run("-C", str(ws), "send", "--yes", "--unreviewed")
        assert resumed.exit_code == 0, resumed.stderr
        sent = assert_journal_is_the_server(journal, server)
    assert sent == dict.fromkeys(everyone(n), 1)
    assert uncertain_total >= STOPS


def start_on_terminal(ws: Path) -> tuple[subprocess.Popen[bytes], int]:
    """`send` with a pseudo-terminal of its own as its controlling terminal, like a shell gives it."""
    import pty

    env = {**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm", "COLUMNS": "100",
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    leader, follower = pty.openpty()
    become = ("import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
              "os.execv(sys.executable, [sys.executable, '-m', 'cepletter', *sys.argv[1:]])")
    process = subprocess.Popen(
        [sys.executable, "-c", become, "-C", str(ws), "send", "--yes", "--unreviewed"],
        stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True, start_new_session=True,
    )
    os.close(follower)
    return process, leader


@pytest.mark.slow
def test_closing_the_terminal_mid_send_stops_it_gracefully(tmp_path: Path, run: Invoke) -> None:
    import select

    n, rng = 200, random.Random("hang up")
    with FaultServer(delay=0.004) as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_toml(server.port), subscribers=readers(n))
        journal = ws / JOURNAL
        for _ in range(3):
            process, leader = start_on_terminal(ws)
            target = results_in(journal) + rng.randint(1, 12)
            while results_in(journal) < target and process.poll() is None:
                if select.select([leader], [], [], 0.002)[0]:
                    os.read(leader, 65536)  # the progress bar
            time.sleep(rng.uniform(0, 0.008))
            os.close(leader)  # the terminal goes away: the kernel sends SIGHUP
            assert process.wait(timeout=60) == 129
            assert_journal_is_the_server(journal, server)
            assert list(read_lines(journal))[-1]["signal"] == "SIGHUP"
        resumed = run("-C", str(ws), "send", "--yes", "--unreviewed")
        assert resumed.exit_code == 0, resumed.stderr
        assert assert_journal_is_the_server(journal, server) == dict.fromkeys(everyone(n), 1)


def everyone(n: int) -> set[str]:
    return {f"reader{i}@example.org" for i in range(n)}



# ---------------------------------------------------------------- the delivery record and git


def git(ws: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(ws), *args], capture_output=True, text=True, check=True)
    return done.stdout


def git_workspace(tmp_path: Path, toml_extra: str = "", subscribers: str | None = None) -> Path:
    from cepletter.workspace import sample_text

    ws = make_workspace(tmp_path / "ws", toml_extra=toml_extra, subscribers=subscribers)
    (ws / ".gitignore").write_text(sample_text("gitignore"), encoding="utf-8")  # what `init` writes
    git(ws, "init", "-q")
    return ws


def test_the_journal_is_kept_in_git_and_the_lock_is_not(tmp_path: Path, run: Invoke) -> None:
    ws = git_workspace(tmp_path)
    assert run("-C", str(ws), "send", "--yes").exit_code == 0
    status = git(ws, "status", "--porcelain", "--ignored", "--untracked-files=all").splitlines()
    assert "?? issues/2025-12/send-log.jsonl" in status  # offered to git, beside issue.md
    assert "?? issues/2025-12/review.jsonl" in status  # with the note that the list was mailed
    assert "!! .cepletter-cache/send-2025-12.lock" in status
    git(ws, "clean", "-fdX")  # removes what git ignores: the cache, the lock, the outbox
    assert (ws / JOURNAL).exists()
    again = run("-C", str(ws), "send", "--yes")
    assert again.exit_code == 0 and "Nothing to send" in again.stderr
    assert not (ws / "outbox").exists()  # nobody mailed again


@pytest.mark.slow
def test_git_clean_during_a_send_does_not_let_a_second_send_start(tmp_path: Path, run: Invoke) -> None:
    # Before: the clean removed the journal and the lock, and a second send mailed everyone again.
    n = 60
    with SmtpServer(delay=0.03) as server:
        ws = git_workspace(tmp_path, toml_extra=smtp_toml(server.port), subscribers=readers(n))
        first = start_send(ws)
        target = 5
        wait_until(lambda: results_in(ws / JOURNAL) >= target, first, f"{target} results")
        git(ws, "clean", "-fdX")
        assert not (ws / ".cepletter-cache").exists() and (ws / JOURNAL).exists()
        second = run("-C", str(ws), "send", "--yes", "--unreviewed")
        assert second.exit_code == 1
        assert "Error: another `cepletter send` of issue 2025-12 is running (it is writing " in second.stderr
        _, err = first.communicate(timeout=60)
        assert first.returncode == 0, err.decode()
    assert server.received_by() == dict.fromkeys(everyone(n), 1)


def test_a_lost_journal_stops_the_send_until_resend_all(tmp_path: Path, run: Invoke) -> None:
    # A fresh clone without the journal, or `git clean -fdx`: review.jsonl (in git) still says
    # the list was mailed. Before: the whole list was mailed again, "0 already sent".
    ws = make_workspace(tmp_path / "ws")
    assert run("-C", str(ws), "send", "--yes").exit_code == 0
    notes = [json.loads(line) for line in (ws / "issues" / "2025-12" / "review.jsonl").read_text().splitlines()]
    assert [(n["kind"], n["recipients"]) for n in notes] == [("send", 3)]
    (ws / JOURNAL).unlink()
    refused = run("-C", str(ws), "send", "--yes")
    assert refused.exit_code == 1
    assert "Error: issue 2025-12: the delivery record is missing: review.jsonl notes a send to the list on " in \
        refused.stderr
    assert "Restore send-log.jsonl" in refused.stderr and "add --resend-all" in refused.stderr
    assert len(outbox(ws)) == 3 and not (ws / JOURNAL).exists()
    again = run("-C", str(ws), "send", "--yes", "--resend-all")
    assert again.exit_code == 0, again.stderr
    assert "Resending:  to everyone on the list (--resend-all)" in again.stderr
    assert len(outbox(ws)) == 6
    assert next(read_lines(ws / JOURNAL))["resend_all"] is True


def test_an_old_gitignore_that_hides_the_journal_is_pointed_out(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    (ws / ".gitignore").write_text("# Made by cepletter\nissues/*/build/\nissues/*/send-log.jsonl\n",
                                   encoding="utf-8")
    result = run("-C", str(ws), "send", "--yes")
    assert result.exit_code == 0
    assert "warning: .gitignore, line 3: git ignores the delivery journals (send-log.jsonl)" in result.stderr


# ---------------------------------------------------------------- on a terminal


def run_on_terminal(ws: Path, answer: bytes) -> tuple[int, str]:
    """Run `send` with a pseudo-terminal as stdin/stdout/stderr, answer the question, return (exit, screen)."""
    import pty
    import select

    env = {**os.environ, "PYTHONPATH": str(REPO), "TERM": "xterm", "COLUMNS": "100"}
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "cepletter", "-C", str(ws), "send"],
        stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True,
    )
    os.close(follower)
    screen = b""
    answered = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closes when the process ends
                break
            if not chunk:
                break
            screen += chunk
        if not answered and b"recipients now?" in screen:
            os.write(leader, answer)
            answered = True
        if process.poll() is not None and not ready:
            break
    os.close(leader)
    return process.wait(timeout=30), screen.decode("utf-8", "replace")


def test_on_a_terminal_it_asks_and_yes_sends(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    code, screen = run_on_terminal(ws, b"y\n")
    assert code == 0, screen
    assert "Send to 3 recipients now? [y/N]" in screen
    assert "delivered" in screen
    assert len(outbox(ws)) == 3


def test_on_a_terminal_no_sends_nothing(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    code, screen = run_on_terminal(ws, b"n\n")
    assert code == 1
    assert "Nothing sent." in screen
    assert not (ws / "outbox").exists()
    assert not (ws / JOURNAL).exists()
