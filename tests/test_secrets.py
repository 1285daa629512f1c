"""The SMTP password never shows: every command, run with --debug and the password set.

The password is a distinctive string. After the whole workflow (init, items,
draft, preview, check, test send, approve, send, export in every format,
archive) and the failure paths (a refused login, a server that drops the
connection after AUTH, a certificate nobody trusts), it must not appear in any
output, in the journal or the review records, in any file in the workspace
(zip members included) or in the messages the server received; and the server
must have seen the login, so the password really was used.
"""

from __future__ import annotations

import base64
import io
import zipfile
from pathlib import Path

import pytest
from conftest import Invoke
from smtpservers import SmtpServer, make_self_signed

from cepletter.workspace import init_workspace

SECRET = "Pa55-cepletter-S3CRET-7f1e"
ENCODINGS = [SECRET, base64.b64encode(SECRET.encode()).decode(), base64.b64encode(f"\0newsletter\0{SECRET}".encode()).decode()]


def smtp_settings(port: int, security: str = "none", ca_file: str | None = None) -> str:
    ca = f'ca_file = "{ca_file}"\n' if ca_file else ""
    return (f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "{security}"\nusername = "newsletter"\n'
            f"timeout = 10\n{ca}")


def smtp_workspace(root: Path, port: int, security: str = "none", ca_file: str | None = None) -> Path:
    init_workspace(root)
    config = root / "cepletter.toml"
    text = config.read_text(encoding="utf-8").replace('transport = "maildir"', 'transport = "smtp"')
    config.write_text(text + smtp_settings(port, security, ca_file), encoding="utf-8")
    return root


def leaks(data: bytes) -> list[str]:
    return [form for form in ENCODINGS if form.encode() in data]


def scan_workspace(root: Path) -> dict[str, list[str]]:
    """Every file under ``root`` (and every member of every zip) that holds the password in any form."""
    found: dict[str, list[str]] = {}
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if hit := leaks(data):
            found[str(path.relative_to(root))] = hit
        if path.suffix == ".zip":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for member in archive.namelist():
                    if hit := leaks(archive.read(member)):
                        found[f"{path.name}:{member}"] = hit
    return found


def write_intro(ws: Path, issue_id: str) -> None:
    """Replace the placeholder intro `draft` leaves, as a person does before sending."""
    issue_md = ws / "issues" / issue_id / "issue.md"
    text = issue_md.read_text(encoding="utf-8")
    issue_md.write_text(text[: text.index("\n---\n", 3) + 5] + "\nThis month: the 2026 calendar.\n", encoding="utf-8")


def test_no_command_ever_shows_or_stores_the_password(
        tmp_path: Path, run: Invoke, capfd: pytest.CaptureFixture[str]) -> None:
    env = {"CEPLETTER_SMTP_PASSWORD": SECRET}
    outputs: list[str] = []

    def cmd(ws: Path, *args: str, code: int = 0) -> None:
        result = run("--debug", "-C", str(ws), *args, env=env)
        outputs.append(result.stdout + result.stderr)
        assert result.exit_code == code, (args, result.stdout, result.stderr)

    with SmtpServer(auth={"newsletter": SECRET}) as server:
        ws = tmp_path / "ws"
        init = run("--debug", "init", str(ws), env=env)
        assert init.exit_code == 0
        outputs.append(init.stdout + init.stderr)
        smtp_workspace(tmp_path / "ws", server.port)
        cmd(ws, "items")
        cmd(ws, "draft", "--all", "--issue", "2026-01")
        write_intro(ws, "2026-01")
        cmd(ws, "preview", "2026-01")
        cmd(ws, "preview", "2026-01", "--text")
        cmd(ws, "check", "2026-01")
        cmd(ws, "check", "2026-01", "--clients")
        cmd(ws, "send", "2026-01", "--dry-run")
        cmd(ws, "send", "2026-01", "--test", "me@example.org")
        cmd(ws, "approve", "2026-01", "--by", "Anna")
        cmd(ws, "send", "2026-01", "--yes")
        cmd(ws, "send", "2026-01", "--yes")  # nothing left: the resume path
        for fmt in ("html", "txt", "eml", "mbox", "zip"):
            cmd(ws, "export", "2026-01", "--format", fmt, "-o", str(ws / f"out.{fmt}"))
        cmd(ws, "export", "2026-01", "--format", "eml", "-o", "-")
        cmd(ws, "archive", "-o", str(ws / "site"))
    # The password was used: the server saw logins, and the list got the issue.
    assert server.authenticator is not None and server.authenticator.logins
    assert all(login == "PLAIN:newsletter" or login == "LOGIN:newsletter" for login in server.authenticator.logins)
    assert len(server.messages) >= 2
    captured = capfd.readouterr()
    for text in [*outputs, captured.out, captured.err]:
        assert not leaks(text.encode()), text
    for message in server.messages:
        assert not leaks(message.data)
    assert (ws / "issues" / "2026-01" / "send-log.jsonl").exists()
    assert (ws / "issues" / "2026-01" / "review.jsonl").exists()
    assert scan_workspace(ws) == {}


@pytest.mark.parametrize("case", ["wrong-password", "untrusted-certificate", "drop-after-auth", "no-starttls"])
def test_failures_with_debug_never_show_the_password(
        tmp_path: Path, run: Invoke, capfd: pytest.CaptureFixture[str], case: str) -> None:
    env = {"CEPLETTER_SMTP_PASSWORD": SECRET}
    if case == "wrong-password":
        server = SmtpServer(auth={"newsletter": "another password"})
        ws_security, ca, expect = "none", None, "refused the login of newsletter: 535"
    elif case == "untrusted-certificate":
        server = SmtpServer(tls=make_self_signed(tmp_path / "certs"), auth={"newsletter": SECRET})
        ws_security, ca, expect = "starttls", None, "the server's certificate is not trusted"
    elif case == "no-starttls":
        server = SmtpServer(auth={"newsletter": SECRET})
        ws_security, ca, expect = "starttls", None, "does not offer STARTTLS"
    else:
        from faultservers import FaultServer

        server = FaultServer(p_drop_data=1.0, auth={"newsletter": SECRET})
        ws_security, ca, expect = "none", None, "connection lost"
    with server:
        ws = smtp_workspace(tmp_path / "ws", server.port, ws_security, ca)
        (ws / "cepletter.toml").write_text(
            (ws / "cepletter.toml").read_text(encoding="utf-8").replace("rate = 100\n", "rate = 1000\nretries = 0\n"),
            encoding="utf-8")
        assert run("-C", str(ws), "draft", "--all", "--issue", "2026-01").exit_code == 0
        write_intro(ws, "2026-01")
        result = run("--debug", "-C", str(ws), "send", "2026-01", "--yes", "--unreviewed", env=env)
    assert result.exit_code == 1
    assert expect in result.stdout + result.stderr
    if case == "drop-after-auth":
        assert server.authenticator is not None and server.authenticator.logins  # the password was sent
    captured = capfd.readouterr()
    for text in (result.stdout, result.stderr, captured.out, captured.err):
        assert not leaks(text.encode()), text
    assert scan_workspace(ws) == {}


UTF8_SECRET = "Pässwörd-用户-cepletter-9c2d"


def every_form(password: str, user: str = "newsletter") -> list[str]:
    """The password as typed and as each mechanism sends it: AUTH PLAIN and each AUTH LOGIN step."""
    raw = password.encode()
    return [password, base64.b64encode(raw).decode(), base64.b64encode(b"\0" + user.encode() + b"\0" + raw).decode()]


def echoing_send(tmp_path: Path, run: Invoke, password: str, mechanism: str, **faults: object) -> tuple[
        object, Path, object]:
    from faultservers import FaultServer

    server = FaultServer(auth={"newsletter": password}, echo_credentials=True, auth_mechanisms=(mechanism,),
                         **faults)  # type: ignore[arg-type]
    with server:
        ws = smtp_workspace(tmp_path / "ws", server.port)
        (ws / "cepletter.toml").write_text(
            (ws / "cepletter.toml").read_text(encoding="utf-8").replace("rate = 100\n", "rate = 1000\n")
            .replace("connections = 4", "connections = 1"),
            encoding="utf-8")
        assert run("-C", str(ws), "draft", "--all", "--issue", "2026-01").exit_code == 0
        write_intro(ws, "2026-01")
        result = run("--debug", "-C", str(ws), "send", "2026-01", "--yes", "--unreviewed",
                     env={"CEPLETTER_SMTP_PASSWORD": password})
    return result, ws, server


@pytest.mark.parametrize("password", [SECRET, UTF8_SECRET], ids=["ascii", "utf8"])
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_a_535_that_echoes_the_credentials_is_shown_without_them(
        tmp_path: Path, run: Invoke, capfd: pytest.CaptureFixture[str], mechanism: str, password: str) -> None:
    # The server refuses every login, repeating the user, the password and the base64 it got.
    result, ws, server = echoing_send(tmp_path, run, password, mechanism, logins_allowed=0)
    assert server.authenticator.received == [(mechanism, b"newsletter", password.encode())]  # type: ignore[attr-defined]
    assert result.exit_code == 1  # type: ignore[attr-defined]
    shown = result.stdout + result.stderr  # type: ignore[attr-defined]
    assert "refused the login of newsletter: 535" in shown
    assert "[password hidden]" in shown and "Authentication failed for newsletter" in shown
    captured = capfd.readouterr()
    for text in (shown, captured.out, captured.err):
        assert [form for form in every_form(password) if form in text] == [], text
    assert [str(p) for p in ws.rglob("*") if p.is_file()
            and any(form.encode() in p.read_bytes() for form in every_form(password))] == []


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_an_echoing_535_on_a_reconnect_during_the_send_stays_out_of_the_journal(
        tmp_path: Path, run: Invoke, mechanism: str) -> None:
    # The first login works; the first MAIL is answered 421 (the session ends), so the sender
    # connects again, and that login is refused with the credentials echoed.
    result, ws, server = echoing_send(tmp_path, run, UTF8_SECRET, mechanism, logins_allowed=1,
                                      odd_mail={1: "421 4.3.0 Closing, come back later"})
    assert server.login_attempts == 2  # type: ignore[attr-defined]
    assert result.exit_code == 1  # type: ignore[attr-defined]
    shown = result.stdout + result.stderr  # type: ignore[attr-defined]
    assert "refused the login of newsletter: 535" in shown and "[password hidden]" in shown
    journal = ws / "issues" / "2026-01" / "send-log.jsonl"
    assert journal.exists() and b'"event": "start"' in journal.read_bytes()
    for form in every_form(UTF8_SECRET):
        assert form not in shown
        assert form.encode() not in journal.read_bytes()


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_a_non_ascii_password_is_sent_as_utf8(tmp_path: Path, run: Invoke, mechanism: str) -> None:
    # The server decodes what it got and compares it, as UTF-8, with the password it knows.
    from faultservers import FaultServer

    with FaultServer(auth={"newsletter": UTF8_SECRET}, auth_mechanisms=(mechanism,)) as server:
        ws = smtp_workspace(tmp_path / "ws", server.port)
        assert run("-C", str(ws), "draft", "--all", "--issue", "2026-01").exit_code == 0
        write_intro(ws, "2026-01")
        result = run("-C", str(ws), "send", "2026-01", "--test", "me@example.org",
                     env={"CEPLETTER_SMTP_PASSWORD": UTF8_SECRET})
    assert result.exit_code == 0, result.stderr
    assert server.authenticator.received == [(mechanism, b"newsletter", UTF8_SECRET.encode("utf-8"))]
    assert server.authenticator.logins == [f"{mechanism}:newsletter"]
    assert server.received_by() == {"me@example.org": 1}
