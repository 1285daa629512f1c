"""Exports, parsed back with the standard library: html, txt, eml, mbox, zip."""

from __future__ import annotations

import email
import email.policy
import mailbox
import os
import stat
import zipfile
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from conftest import Invoke
from deliverykit import make_workspace

from cepletter.config import load_settings
from cepletter.issue.file import load
from cepletter.message.personal import PersonalIssue
from cepletter.publish.export import export, local_images, write_zip
from cepletter.render.rendered import RenderedIssue, SlotTemplate

BUILD = Path("issues/2025-12/build")


def test_html_and_txt_are_the_web_version(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    html = run("-C", str(ws), "export", "--format", "html")
    assert html.exit_code == 0, html.stderr
    assert f"Wrote {ws / BUILD / '2025-12.html'}" in html.stderr
    page = (ws / BUILD / "2025-12.html").read_text(encoding="utf-8")
    assert "<html" in page and "News item 0: Probation in Europe" in page
    assert "anna@example.org" not in page
    text = run("-C", str(ws), "export", "--format", "txt", "-o", str(tmp_path / "n.txt"))
    assert text.exit_code == 0
    assert "News item 1: Probation in Europe" in (tmp_path / "n.txt").read_text(encoding="utf-8")


def test_html_to_stdout(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    result = run("-C", str(ws), "export", "--format", "html", "-o", "-")
    assert result.exit_code == 0
    assert result.stdout.startswith("<!DOCTYPE html> <html lang=\"en\"")
    assert not (ws / BUILD / "2025-12.html").exists()


def test_eml_opens_as_the_newsletter_with_no_placeholders(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    result = run("-C", str(ws), "export", "--format", "eml", "-o", str(tmp_path / "issue.eml"))
    assert result.exit_code == 0, result.stderr
    message = email.message_from_bytes((tmp_path / "issue.eml").read_bytes(), policy=email.policy.default)
    assert message["Subject"] == "Newsletter December 2025"
    assert message["From"] == "CEP <newsletter@example.org>"
    assert message.get_content_type() == "multipart/alternative"
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    assert html is not None and text is not None
    html_s, text_s = html.get_content(), text.get_content()
    assert "News item 2" in html_s and "News item 2" in text_s
    for body in (html_s, text_s):
        assert "{email}" not in body and "{{" not in body and "{token}" not in body
    assert message.defects == []


def test_mbox_holds_every_subscribers_message(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws", subscribers=(
        "email,name\nanna@example.org,Anna Jansen\nFrom@example.org,From Line\ngone@example.org,Gone\n"
        "bad@@example.org,Bad\neva@example.org,Eva Novák\n"
    ))
    out = tmp_path / "all.mbox"
    result = run("-C", str(ws), "export", "--format", "mbox", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert "3 messages" in result.stderr
    assert "line 5: 'bad@@example.org' skipped" in result.stderr
    box = mailbox.mbox(out, create=False)
    tos = [str(make_header(decode_header(m["To"]))) for m in box]
    assert tos == ["Anna Jansen <anna@example.org>", "From Line <From@example.org>", "Eva Novák <eva@example.org>"]
    for message in box:
        parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
        body = parsed.get_body(("plain",))
        assert body is not None and "News item 0" in body.get_content()
    assert "unsubscribe?email=eva@example.org" in box[2].as_string()
    box.close()


def test_mbox_and_zip_cannot_go_to_stdout(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    result = run("-C", str(ws), "export", "--format", "zip", "-o", "-")
    assert result.exit_code == 2
    assert "--format zip cannot be written to stdout" in result.stderr


def test_unknown_format_is_a_usage_error(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    result = run("-C", str(ws), "export", "--format", "pdf")
    assert result.exit_code == 2
    assert "'pdf' is not one of" in result.stderr


def test_zip_from_the_cli_holds_html_and_text(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    result = run("-C", str(ws), "export", "--format", "zip")
    assert result.exit_code == 0, result.stderr
    with zipfile.ZipFile(ws / BUILD / "2025-12.zip") as archive:
        assert sorted(archive.namelist()) == ["newsletter.html", "newsletter.txt"]
        assert b"News item 0" in archive.read("newsletter.html")


def _rendered_with_images() -> PersonalIssue:
    page = (
        '<html><body><img src="images/logo.png" alt="CEP"><img src="https://example.org/remote.jpg" alt="">'
        '<img src="images/logo.png" alt="again"><img src="../../../../outside.png" alt="">'
        '<img src="missing.gif" alt=""><img src="data:image/gif;base64,AAAA" alt=""></body></html>'
    )
    return PersonalIssue(RenderedIssue(
        issue_id="2025-12", subject="S", preheader="", html=SlotTemplate((page,)),
        text=SlotTemplate(("text\n",))), values_for=lambda r: {})


def test_zip_packs_local_images_and_nothing_from_outside(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    (tmp_path / "outside.png").write_bytes(b"secret")
    folder = ws / "issues" / "2025-12"
    (folder / "images").mkdir()
    (folder / "images" / "logo.png").write_bytes(PNG)
    rendered = _rendered_with_images()
    assert local_images(rendered.web()[0]) == ["images/logo.png", "../../../../outside.png", "missing.gif"]
    result = write_zip(load_settings(ws), rendered, folder, tmp_path / "out.zip")
    assert result.images == ["images/logo.png"]
    assert len(result.warnings) == 2 and all("left out" in w for w in result.warnings)
    with zipfile.ZipFile(tmp_path / "out.zip") as archive:
        assert sorted(archive.namelist()) == ["images/logo.png", "newsletter.html", "newsletter.txt"]
        assert archive.read("images/logo.png") == PNG


PNG = b"\x89PNG\r\n\x1a\n" + bytes(24)


def test_zip_never_packs_a_workspace_data_file(tmp_path: Path, run: Invoke) -> None:
    """A template that names the list, the settings or a disguised file gets images only."""
    ws = make_workspace(tmp_path / "ws")
    (ws / "images").mkdir()
    (ws / "images" / "logo.png").write_bytes(PNG)
    (ws / "images" / "list.png").write_bytes((ws / "subscribers.csv").read_bytes())  # a CSV named .png
    (ws / "images" / "notes.txt").write_text("not an image", encoding="utf-8")
    (ws / "templates").mkdir(exist_ok=True)
    (ws / "templates" / "_header.html.j2").write_text(
        "".join(f'<img src="{src}" alt="">' for src in (
            "subscribers.csv", "cepletter.toml", "../ws/subscribers.csv", "images/../subscribers.csv",
            "images/list.png", "images/notes.txt", "suppressed.csv", "images/logo.png", "logo.png")),
        encoding="utf-8")
    result = run("-C", str(ws), "export", "--format", "zip")
    assert result.exit_code == 0, result.stderr
    with zipfile.ZipFile(ws / BUILD / "2025-12.zip") as archive:
        assert sorted(archive.namelist()) == ["images/logo.png", "logo.png", "newsletter.html", "newsletter.txt"]
        assert archive.read("images/logo.png") == archive.read("logo.png") == PNG
    assert result.stderr.count("left out") == 7


def test_exports_replace_files_whole(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path / "ws")
    target = tmp_path / "x.html"
    target.write_text("old", encoding="utf-8")
    rendered = _rendered_with_images()
    export(load_settings(ws), rendered, ws / "issues" / "2025-12", "html", target)
    assert target.read_text(encoding="utf-8").startswith("<html>")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_mbox_keeps_body_lines_that_start_with_from(tmp_path: Path) -> None:
    from cepletter.publish.export import write_mbox

    ws = make_workspace(tmp_path / "ws")
    rendered = PersonalIssue(RenderedIssue(
        issue_id="2025-12", subject="S", preheader="", html=SlotTemplate(("<p>x</p>\n",)),
        text=SlotTemplate(("Intro\nFrom the start of the year\n>From quoted\n",))), values_for=lambda r: {})
    result = write_mbox(load_settings(ws), rendered, tmp_path / "x.mbox")
    assert result.messages == 3
    box = mailbox.mbox(tmp_path / "x.mbox", create=False)
    assert len(box) == 3
    for message in box:
        parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
        body = parsed.get_body(("plain",))
        assert body is not None
        assert body.get_content() == "Intro\nFrom the start of the year\n>From quoted\n"
        assert body["Content-Transfer-Encoding"] == "quoted-printable"
        html = parsed.get_body(("html",))
        assert html is not None and html["Content-Transfer-Encoding"] == "8bit"
    box.close()


def test_mbox_and_eml_bodies_are_8bit_and_decode_to_the_rendered_issue(tmp_path: Path, run: Invoke) -> None:
    from cepletter.message.personal import render_personal
    from cepletter.message.recipient import Recipient
    from cepletter.publish.export import write_mbox

    ws = make_workspace(tmp_path / "ws")
    settings = load_settings(ws)
    rendered = render_personal(settings, load(settings.issues_dir / "2025-12" / "issue.md"))
    write_mbox(settings, rendered, tmp_path / "all.mbox")
    box = mailbox.mbox(tmp_path / "all.mbox", create=False)
    people = {"anna@example.org": "Anna Jansen", "eva@example.org": "Eva Novák", "luca@example.org": ""}
    for message in box:
        parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
        address = parsed["To"].addresses[0].addr_spec
        html, text = rendered.fill(Recipient(address, people[address]))
        parts = {p.get_content_type(): p for p in parsed.iter_parts()}
        assert [p["Content-Transfer-Encoding"] for p in parts.values()] == ["8bit", "8bit"]
        assert (parts["text/html"].get_content(), parts["text/plain"].get_content()) == (html, text)
        assert max(len(line) for line in message.as_bytes().split(b"\n")) <= 998
    assert len(box) == 3
    box.close()
    eml = run("-C", str(ws), "export", "--format", "eml", "-o", str(tmp_path / "n.eml"))
    assert eml.exit_code == 0, eml.stderr
    parsed = email.message_from_bytes((tmp_path / "n.eml").read_bytes(), policy=email.policy.default)
    assert [p["Content-Transfer-Encoding"] for p in parsed.iter_parts()] == ["8bit", "8bit"]
    assert (parsed.get_body(("html",)).get_content(), parsed.get_body(("plain",)).get_content()) == rendered.web()


@pytest.mark.parametrize("fmt", ["mbox", "zip", "html"])
def test_exports_get_the_mode_of_any_new_file(tmp_path: Path, run: Invoke, fmt: str) -> None:
    """Written through the one atomic writer: not the temporary file's 0600, and an existing file keeps its mode."""
    ws = make_workspace(tmp_path / "ws")
    old = os.umask(0o022)
    try:
        assert run("-C", str(ws), "export", "--format", fmt).exit_code == 0
        target = ws / BUILD / f"2025-12.{fmt}"
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
        target.chmod(0o640)
        assert run("-C", str(ws), "export", "--format", fmt).exit_code == 0
        assert stat.S_IMODE(target.stat().st_mode) == 0o640
    finally:
        os.umask(old)
    assert [p.name for p in target.parent.iterdir() if p.name.endswith(".tmp")] == []
