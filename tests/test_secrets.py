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
            (ws / "cepletter.toml").read_text(encoding="utf-8").replace("rate = 10", "rate = 1000\nretries = 0"),
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
