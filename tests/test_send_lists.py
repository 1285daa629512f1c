"""`cepletter send` with the lists people really have, and keeping them clean.

A suppressed address is never mailed, in whatever form and encoding a
spreadsheet saved the suppression list; a list that cannot be read stops the
send; an address the server says does not exist goes into suppressed.csv and
is never mailed again. Every test sends through the CLI to a real aiosmtpd
server on 127.0.0.1 (or a real Maildir) and checks what arrived.
"""

from __future__ import annotations

import codecs
import csv
import email
import io
import json
import mailbox
import re
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from conftest import Invoke
from deliverykit import make_issue, make_workspace
from faultservers import FaultServer

from cepletter.deliver.journal import read_lines, read_results

JOURNAL = Path("issues/2025-12/send-log.jsonl")


@pytest.fixture(autouse=True)
def no_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.delenv("CEPLETTER_SMTP_PASSWORD", raising=False)


def smtp_toml(port: int, delivery: str = "") -> str:
    return (
        f'[delivery]\ntransport = "smtp"\nrate = 1000\nconnections = 2\nretries = 1\nretry_max_seconds = 1\n{delivery}'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout = 10\n'
    )


def subscribers(addresses: list[str]) -> str:
    return "email,name\n" + "".join(f"{a},Reader {i}\n" for i, a in enumerate(addresses))


def received(server: FaultServer) -> list[str]:
    return sorted(r for m in server.messages for r in m.recipients)


def to_headers(ws: Path) -> list[str]:
    box = mailbox.Maildir(ws / "outbox", factory=None, create=False)
    return sorted(str(make_header(decode_header(email.message_from_bytes(m.as_bytes())["To"]))) for m in box)


def plain(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- a suppressed address is never mailed

LIST = ["anna@example.org", "gone1@example.org", "gone2@example.org", "gone3@example.org",
        "gone4@example.org", "gone5@example.org", "eva@example.org"]
# Every form a spreadsheet cell may hold a suppressed address in: case, a display name, mailto:, spaces.
SUPPRESSED_CELLS = ["GONE1@Example.ORG", "  Gone Two <gone2@example.org>  ", "mailto:gone3@example.org",
                    "MAILTO: Gone4@example.org ", '"Five, Gone" < gone5@example.org >']


def _excel_unicode_text(cells: list[str], encoding: str) -> bytes:
    """What "Unicode text" in a spreadsheet writes: UTF-16 with a byte-order mark, tabs, CRLF."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\r\n")
    writer.writerow(["E-Mail-Adresse", "Grund"])
    for cell in cells:
        writer.writerow([cell, "abgemeldet – désinscrit"])
    bom = codecs.BOM_UTF16_LE if encoding == "utf-16-le" else codecs.BOM_UTF16_BE
    return bom + buffer.getvalue().encode(encoding)


@pytest.mark.parametrize("kind", ["utf-16-le", "utf-16-be", "utf-8-sig", "cp1252", "utf-8 multi-line"])
def test_suppressed_addresses_are_never_mailed_whatever_the_spreadsheet_saved(
        tmp_path: Path, run: Invoke, kind: str) -> None:
    if kind.startswith("utf-16"):
        data = _excel_unicode_text(SUPPRESSED_CELLS, kind)
    elif kind == "utf-8-sig":
        data = ("\ufeffEmail;Raison\r\n" + "".join(f"{c};désinscrit\r\n" for c in SUPPRESSED_CELLS)).encode()
    elif kind == "cp1252":
        data = ("Adresse e-mail;Raison\r\n" + "".join(f"{c};désinscrit – 2025\r\n" for c in SUPPRESSED_CELLS)
                ).encode("cp1252")
        assert b"\xe9" in data and b"\x96" in data  # é and the dash, as Windows-1252 writes them
    else:
        # A note with a line break inside quotes, between the entries.
        data = ("email,note\n" + "".join(f'"{c.replace(chr(34), chr(34) * 2)}","asked\non the phone"\n'
                                         for c in SUPPRESSED_CELLS)).encode()
    with FaultServer() as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_toml(server.port), subscribers=subscribers(LIST))
        (ws / "suppressed.csv").write_bytes(data)
        result = run("-C", str(ws), "send", "--yes", "--unreviewed")
    assert result.exit_code == 0, result.stderr
    assert "Recipients: 2 (list rows 7: 0 already sent, 5 suppressed, 0 duplicates, 0 invalid)" in result.stderr
    assert received(server) == ["anna@example.org", "eva@example.org"]
    assert all(not key.startswith("gone") for key in server.rcpt_counts)


def test_a_suppression_list_that_is_missing_stops_the_send(tmp_path: Path, run: Invoke) -> None:
    with FaultServer() as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_toml(server.port, 'suppressed = "supressed.csv"\n'))
        result = run("-C", str(ws), "send", "--yes", "--unreviewed")
    assert result.exit_code == 1
    assert f"Error: {ws / 'supressed.csv'}: suppression list not found" in result.stderr
    assert 'suppressed = ""' in result.stderr  # the hint says how to send without one, on purpose
    assert server.messages == [] and server.rcpt_counts == {}
    assert not (ws / JOURNAL).exists()


def test_the_default_suppression_list_missing_also_stops_the_send(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    (ws / "suppressed.csv").unlink()
    result = run("-C", str(ws), "send", "--yes")
    assert result.exit_code == 1
    assert "suppressed.csv: suppression list not found" in result.stderr
    assert not (ws / "outbox").exists()


def test_a_suppression_list_that_cannot_be_read_stops_the_send(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    # UTF-16 with a broken second entry: a lone surrogate, which no UTF-16 writer produces.
    (ws / "suppressed.csv").write_bytes(codecs.BOM_UTF16_LE + "email\r\ngone@example.org\r\n".encode("utf-16-le")
                                        + b"\x00\xd8x\x00\r\x00\n\x00")
    result = run("-C", str(ws), "send", "--yes")
    assert result.exit_code == 1
    assert "suppressed.csv, line 3: not valid UTF-16 text" in result.stderr
    assert not (ws / "outbox").exists()

    (ws / "suppressed.csv").unlink()
    (ws / "suppressed.csv").mkdir()
    result = run("-C", str(ws), "send", "--yes")
    assert result.exit_code == 1
    assert "suppressed.csv: the suppression list is a folder, not a file" in result.stderr
    assert not (ws / "outbox").exists()


def test_no_suppression_only_when_the_key_is_explicitly_empty(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws", toml_extra='[delivery]\nsuppressed = ""\n',
                        subscribers=subscribers(["anna@example.org", "gone@example.org"]))
    result = run("-C", str(ws), "send", "--yes")
    assert result.exit_code == 0, result.stderr
    assert "0 suppressed" in result.stderr
    assert to_headers(ws) == ["Reader 0 <anna@example.org>", "Reader 1 <gone@example.org>"]

    spaces = make_workspace(tmp_path / "spaces", toml_extra='[delivery]\nsuppressed = "  "\n')
    refused = run("-C", str(spaces), "send", "--yes")
    assert refused.exit_code == 1
    assert "cepletter.toml, line 10: [delivery] suppressed: '  ' has spaces around the file name" in refused.stderr
    assert not (spaces / "outbox").exists()


# ---------------------------------------------------------------- the subscriber list as spreadsheets write it


def test_a_utf8_list_with_one_stray_windows_1252_byte_keeps_every_other_name(tmp_path: Path, run: Invoke) -> None:
    # Someone pasted a row from an old Windows export into a UTF-8 list: "René" is one byte 0xE9.
    data = ("email,name\njurgen@example.org,Jürgen Müller\n".encode()
            + b"rene@example.org,Ren\xe9 Dupont\n"
            + "zoe@example.org,Zoë Ñúñez\n".encode())
    ws = make_workspace(tmp_path / "ws")
    (ws / "subscribers.csv").write_bytes(data)
    result = run("-C", str(ws), "send", "--yes")
    assert result.exit_code == 0, result.stderr
    assert to_headers(ws) == ["Jürgen Müller <jurgen@example.org>", "René Dupont <rene@example.org>",
                              "Zoë Ñúñez <zoe@example.org>"]
    assert "subscribers.csv: line 3 not UTF-8 like the rest of the file" in result.stderr


def test_a_windows_1252_list_is_read_as_such_without_a_warning(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws")
    (ws / "subscribers.csv").write_bytes("E-mail;Nom;Prénom\r\nmarie@example.org;Dubois;Marie-Hélène\r\n"
                                         .encode("cp1252"))
    result = run("-C", str(ws), "send", "--yes")
    assert result.exit_code == 0, result.stderr
    assert to_headers(ws) == ["Marie-Hélène Dubois <marie@example.org>"]
    assert "not UTF-8" not in result.stderr


@pytest.mark.parametrize(("header", "row", "name"), [
    ("E-Mail-Adresse;Vorname;Name", "jurgen@example.org;Jürgen;Müller", "Jürgen Müller"),
    ("Adresse e-mail;Prénom;Nom", "marie@example.org;Marie;Dubois", "Marie Dubois"),
    ("E-mailadres;Voornaam;Tussenvoegsel;Achternaam", "pieter@example.org;Pieter;de;Vries", "Pieter de Vries"),
    ("Correo electrónico;Nombre;Apellidos", "jose@example.org;José;Peña Ruiz", "José Peña Ruiz"),
    ("Indirizzo email;Nome;Cognome", "luca@example.org;Luca;Rossi", "Luca Rossi"),
    ("Courriel\tNom complet", "anne@example.org\tAnne Martin", "Anne Martin"),
    ("Naam,E-mail", "Eva Novák,eva@example.org", "Eva Novák"),
    ("email", "Eva Novák <eva@example.org>", "Eva Novák"),
])
def test_header_names_in_other_languages(tmp_path: Path, run: Invoke, header: str, row: str, name: str) -> None:
    ws = make_workspace(tmp_path / "ws", subscribers=f"{header}\n{row}\n")
    result = run("-C", str(ws), "send", "--yes")
    assert result.exit_code == 0, result.stderr
    [to] = to_headers(ws)
    assert to.startswith(f"{name} <") and to.endswith("@example.org>")


# ---------------------------------------------------------------- the list stays clean

REFUSALS = {
    "dead@example.org": "550 5.1.1 <dead@example.org>: Recipient address rejected: User unknown in virtual mailbox table",
    "disabled@example.org": "550 5.2.1 The email account that you tried to reach is disabled.",
    "nomx@example.org": "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
    "old@example.org": "550 User unknown",
    "other@example.org": "550 5.1.0 Address rejected",
    "spam@example.org": "550 5.7.1 Message rejected as spam; user unknown to the sender policy",
}


def test_addresses_refused_as_nonexistent_are_suppressed_and_never_mailed_again(tmp_path: Path, run: Invoke) -> None:
    good = ["anna@example.org", "eva@example.org", "luca@example.org"]
    with FaultServer(refuse=REFUSALS) as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_toml(server.port),
                            subscribers=subscribers(good + list(REFUSALS)))
        original = b"# Never mail these again.\r\nEmail;Grund\r\ngone@example.org;abgemeldet\r\n"
        (ws / "suppressed.csv").write_bytes(original)
        first = run("-C", str(ws), "send", "--yes", "--unreviewed")
        assert first.exit_code == 1  # not everyone got the issue
        assert received(server) == sorted(good)
        assert re.search(r"Sent 3 of 9 in (under a second|[\d.]+ s \(\d+ messages/s\)); "
                         r"6 failed \(5 suppressed from now on\)\.", first.stderr), first.stderr
        out = plain(first.stdout)
        assert "failed 6 5 added to suppressed.csv" in out
        assert "spam@example.org failed 550 5.7.1 Message rejected as spam" in out
        assert "Added 5 addresses to suppressed.csv: the server says they do not exist" in first.stderr
        assert "1 address refused for good" in first.stderr  # the spam refusal: not a dead address
        assert "Run `cepletter send` again" not in first.stderr  # nothing here is worth a retry

        # The person's file is kept as written; the new rows say why, when, which issue, what the server said.
        data = (ws / "suppressed.csv").read_bytes()
        lines = data.split(b"\r\n")
        assert lines[0] == b"# Never mail these again." and lines[2] == b"gone@example.org;abgemeldet"
        assert lines[1] == b"Email;Grund;date;issue;reply"
        rows = list(csv.reader(io.StringIO(data.decode(), newline=""), delimiter=";"))[2:]
        assert sorted(r[0] for r in rows[1:]) == sorted(set(REFUSALS) - {"spam@example.org"})
        for email_, reason, day, issue, reply in rows[1:]:
            assert (reason, issue, reply) == ("address unknown", "2025-12", REFUSALS[email_])
            assert re.fullmatch(r"\d{4}-\d\d-\d\d", day)
        assert json.dumps(sorted(r[0] for r in rows[1:])) in json.dumps(
            [sorted(e["emails"]) for e in read_lines(ws / JOURNAL) if e.get("event") == "suppressed"])

        # The next run of the same issue skips them (only the spam refusal is tried again) ...
        second = run("-C", str(ws), "send", "--yes", "--unreviewed")
        assert "Recipients: 1 (list rows 9: 3 already sent, 5 suppressed" in second.stderr
        assert server.rcpt_counts["spam@example.org"] == 2
        # ... and the next issue never tries them.
        make_issue(ws, "2026-01", subject="Newsletter January 2026")
        (ws / "subscribers.csv").write_text(subscribers(good + sorted(set(REFUSALS) - {"spam@example.org"})))
        third = run("-C", str(ws), "send", "2026-01", "--yes", "--unreviewed")
        assert third.exit_code == 0, third.stderr
        assert "Recipients: 3 (list rows 8: 0 already sent, 5 suppressed" in third.stderr
    for address in set(REFUSALS) - {"spam@example.org"}:
        assert server.rcpt_counts[address] == 1, address
    assert received(server) == sorted(good * 2)


def test_a_dead_address_does_not_make_the_next_run_fail(tmp_path: Path, run: Invoke) -> None:
    with FaultServer(refuse={"dead@example.org": REFUSALS["dead@example.org"]}) as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_toml(server.port),
                            subscribers=subscribers(["dead@example.org"]))
        first = run("-C", str(ws), "send", "--yes", "--unreviewed")
        assert first.exit_code == 1
        assert re.search(r"Sent 0 of 1 in (under a second|[\d.]+ s); 1 failed, suppressed from now on\.",
                         first.stderr), first.stderr
        assert "messages/s" not in first.stderr.split("Sent 0 of 1", 1)[1].split("\n", 1)[0]
        again = run("-C", str(ws), "send", "--yes", "--unreviewed")
    assert again.exit_code == 0, again.stderr
    assert "Nothing to send" in again.stderr and "1 suppressed" in again.stdout
    assert server.rcpt_counts == {"dead@example.org": 1}


def test_a_run_stopped_before_it_could_suppress_is_caught_up_by_the_next(tmp_path: Path, run: Invoke) -> None:
    with FaultServer(refuse={"dead@example.org": REFUSALS["dead@example.org"]}) as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_toml(server.port),
                            subscribers=subscribers(["anna@example.org", "dead@example.org", "eva@example.org"]))
        before = (ws / "suppressed.csv").read_bytes()
        assert run("-C", str(ws), "send", "--yes", "--unreviewed").exit_code == 1
        # Put the files back as a kill just after the refusal was journaled leaves them.
        (ws / "suppressed.csv").write_bytes(before)
        journal = ws / JOURNAL
        journal.write_text("".join(json.dumps(e) + "\n" for e in read_lines(journal) if e.get("event") != "suppressed"))
        assert [e["status"] for e in read_results(journal) if e["email"] == "dead@example.org"] == ["failed"]

        again = run("-C", str(ws), "send", "--yes", "--unreviewed")
    assert again.exit_code == 0, again.stderr
    assert "1 address refused as nonexistent in an earlier run of issue 2025-12 added to suppressed.csv" in again.stderr
    assert "dead@example.org,address unknown," in (ws / "suppressed.csv").read_text()
    assert server.rcpt_counts["dead@example.org"] == 1


def test_an_address_taken_out_of_the_list_by_hand_stays_out(tmp_path: Path, run: Invoke) -> None:
    # The mailbox was created again and the editor removed it from suppressed.csv: the journal's
    # old refusal must not put it back.
    with FaultServer(refuse={"dead@example.org": REFUSALS["dead@example.org"]}) as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_toml(server.port),
                            subscribers=subscribers(["anna@example.org", "dead@example.org"]))
        before = (ws / "suppressed.csv").read_bytes()
        assert run("-C", str(ws), "send", "--yes", "--unreviewed").exit_code == 1
    (ws / "suppressed.csv").write_bytes(before)
    with FaultServer() as server:
        (ws / "cepletter.toml").write_text(re.sub(r"port = \d+", f"port = {server.port}",
                                                  (ws / "cepletter.toml").read_text()))
        again = run("-C", str(ws), "send", "--yes", "--unreviewed")
    assert again.exit_code == 0, again.stderr
    assert received(server) == ["dead@example.org"]
    assert (ws / "suppressed.csv").read_bytes() == before


def test_a_server_refusing_most_of_the_list_as_unknown_suppresses_nobody(tmp_path: Path, run: Invoke) -> None:
    # A relay that does not relay for this account answers "user unknown" to every outside address.
    people = [f"reader{i}@example.org" for i in range(12)]
    with FaultServer(refuse={a: f"550 5.1.1 <{a}>: Recipient address rejected: User unknown in relay recipient table"
                             for a in people}) as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_toml(server.port), subscribers=subscribers(people))
        before = (ws / "suppressed.csv").read_bytes()
        result = run("-C", str(ws), "send", "--yes", "--unreviewed")
    assert result.exit_code == 1
    assert "12 of 12 addresses were refused as nonexistent" in plain(result.stderr)
    assert "none was added to suppressed.csv" in plain(result.stderr)
    assert (ws / "suppressed.csv").read_bytes() == before
    assert re.search(r"; 12 failed\.", result.stderr)


def test_with_no_suppression_list_a_dead_address_is_named_for_removal(tmp_path: Path, run: Invoke) -> None:
    with FaultServer(refuse={"dead@example.org": REFUSALS["dead@example.org"]}) as server:
        ws = make_workspace(tmp_path / "ws", toml_extra=smtp_toml(server.port, 'suppressed = ""\n'),
                            subscribers=subscribers(["anna@example.org", "dead@example.org"]))
        result = run("-C", str(ws), "send", "--yes", "--unreviewed")
    assert result.exit_code == 1
    assert ('1 address the server says do not exist, but [delivery] suppressed = "" keeps no suppression list: '
            "take them out of subscribers.csv") in plain(result.stderr)


def test_the_final_line_reads_right() -> None:
    from cepletter.cli.deliver import _final_line
    from cepletter.deliver.sender import Summary

    # Under a second, a rate says more about the clock than the server: none is given.
    assert _final_line(Summary(failed=1, elapsed=0.028), 1, 1) == (
        "Sent 0 of 1 in under a second; 1 failed, suppressed from now on.")
    assert _final_line(Summary(sent=3, elapsed=0.4), 3, 0) == "Sent 3 of 3 in under a second."
    assert _final_line(Summary(sent=40, failed=2, deferred=1, elapsed=3.14), 43, 1) == (
        "Sent 40 of 43 in 3.1 s (13 messages/s); 2 failed (1 suppressed from now on); 1 deferred.")
    assert _final_line(Summary(sent=0, failed=5, elapsed=2.0), 5, 0) == "Sent 0 of 5 in 2.0 s; 5 failed."
    assert _final_line(Summary(sent=9000, elapsed=754.6), 9000, 0) == "Sent 9,000 of 9,000 in 12 min 35 s (12 messages/s)."


def test_export_mbox_honours_the_same_suppression_list(tmp_path: Path, run: Invoke) -> None:
    ws = make_workspace(tmp_path / "ws", subscribers=subscribers(LIST))
    (ws / "suppressed.csv").write_bytes(_excel_unicode_text(SUPPRESSED_CELLS, "utf-16-le"))
    out = tmp_path / "all.mbox"
    result = run("-C", str(ws), "export", "--format", "mbox", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert sorted(m["To"].split("<")[1].rstrip(">") for m in mailbox.mbox(out, create=False)) == [
        "anna@example.org", "eva@example.org"]
    (ws / "suppressed.csv").unlink()
    missing = run("-C", str(ws), "export", "--format", "mbox", "-o", str(tmp_path / "again.mbox"))
    assert missing.exit_code == 1
    assert "suppressed.csv: suppression list not found" in missing.stderr
    assert not (tmp_path / "again.mbox").exists()


def test_the_suppression_list_init_writes_is_read_with_its_comments(tmp_path: Path, run: Invoke) -> None:
    ws = tmp_path / "fresh"
    assert run("init", str(ws)).exit_code == 0
    assert (ws / "suppressed.csv").read_text().startswith("# Addresses that are never mailed")
    with (ws / "subscribers.csv").open("a", encoding="utf-8") as fh:
        fh.write("Former.Subscriber@example.org,Former\n")
    make_issue(ws)
    result = run("-C", str(ws), "send", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "1 suppressed" in result.stdout
