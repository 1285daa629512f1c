"""`cepletter bounces`: returned mail read from a Maildir, an mbox, a real Dovecot, and real Postfix bounces.

The fixtures in tests/bounces/ are the formats relays send (Exchange Online and
Exchange 2003, Gmail, qmail, Postfix, a full mailbox, a delay warning, a spam
refusal, auto-replies, unsubscribe replies, a malformed report). Their
Message-IDs are those of the journal the tests write, ``<2025-12.N@example.org>``
for the Nth subscriber of SUBSCRIBERS.
"""

from __future__ import annotations

import email
import imaplib
import json
import mailbox
import os
import ssl
import time
from pathlib import Path

import pytest
from conftest import Invoke
from deliverykit import make_issue, make_workspace
from mailservers import Dovecot, Postfix, count_messages
from smtpservers import make_ca, make_self_signed

from cepletter.config import settings_from_dict
from cepletter.deliver.bounces import (
    AUTO_REPLY,
    HARD,
    NOT_UNDERSTOOD,
    REFUSED,
    SOFT,
    UNSUBSCRIBE,
    Rules,
    judge,
    read_message,
    unsubscribe_line,
)
from cepletter.deliver.journal import read_results
from cepletter.errors import ConfigError
from cepletter.message.build import MessageFactory
from cepletter.message.personal import envelope_token, unsubscribe_token
from cepletter.message.recipient import Recipient

FIXTURES = Path(__file__).parent / "bounces"
RULES = Rules("unsubscribe@example.org", "bounces+{token}@example.org")

SUBSCRIBERS = [
    ("anna@example.org", "Anna Jansen", ""),
    ("eva@example.org", "Eva Novák", ""),
    ("luca@example.org", "Luca Rossi", "luca-tok-2025x"),
    ("ex.unknown@example.org", "", ""),
    ("old.exchange@example.org", "", ""),
    ("gm.unknown@example.org", "", ""),
    ("qm.unknown@example.org", "", ""),
    ("full@example.org", "", ""),
    ("slow@example.org", "", ""),
    ("blocked@example.org", "", ""),
    ("elodie@example.org", "Élodie Dupont", ""),
    ("marta@example.org", "Marta Silva", ""),
    ("anna.second@example.org", "Anna Second", ""),
    ("eve@example.org", "Eve", ""),
]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def write_journal(ws: Path, issue: str, addresses: list[str] | None = None) -> None:
    """Issue ``issue`` as sent to ``addresses`` (default: everyone), Message-IDs <ISSUE.N@example.org>."""
    make_issue(ws, issue)
    lines = []
    for n, (address, _, _) in enumerate(SUBSCRIBERS, start=1):
        if addresses is None or address in addresses:
            lines.append(json.dumps({"email": address, "status": "sent", "time": "2025-12-01T10:00:00.000Z",
                                     "reply": "250 2.0.0 Ok", "message_id": f"<{issue}.{n}@example.org>",
                                     "attempts": 1}))
    (ws / "issues" / issue / "send-log.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def workspace(tmp_path: Path, extra: str = "") -> Path:
    rows = "".join(f"{a},{n},{t}\n" for a, n, t in SUBSCRIBERS)
    ws = make_workspace(tmp_path / "ws", extra, subscribers="email,name,token\n" + rows)
    (ws / "suppressed.csv").write_text(
        "# People who asked to leave, kept by hand since 2019\nemail;reason;note\nold@example.org;asked;by phone\n",
        encoding="utf-8")
    write_journal(ws, "2025-12")
    return ws


def maildir_of(folder: Path, *messages: bytes) -> Path:
    box = mailbox.Maildir(folder, create=True)
    for data in messages:
        box.add(data)
    return folder


ALL_FIXTURES = sorted(p.name for p in FIXTURES.glob("*.eml"))


# ---------------------------------------------------------------- reading one message


@pytest.mark.parametrize(("name", "kind", "address", "status"), [
    ("exchange_online.eml", HARD, "ex.unknown@example.org", "5.1.10"),
    ("exchange_2003.eml", HARD, "old.exchange@example.org", "5.1.1"),
    ("gmail.eml", HARD, "gm.unknown@example.org", "5.1.1"),
    ("qmail.eml", HARD, "qm.unknown@example.org", "5.1.1"),
    ("mailbox_full.eml", SOFT, "full@example.org", "5.2.2"),
    ("delayed.eml", SOFT, "slow@example.org", "4.4.1"),
    ("policy.eml", REFUSED, "blocked@example.org", "5.7.1"),
])
def test_each_bounce_format_names_its_address_and_status(name: str, kind: str, address: str, status: str) -> None:
    reading = read_message(fixture(name), RULES)
    assert reading.kind == kind
    assert [(f.address, f.kind, f.status) for f in reading.failures] == [(address, kind, status)]
    n = [a for a, _, _ in SUBSCRIBERS].index(address) + 1
    assert f"<2025-12.{n}@example.org>" in reading.message_ids


@pytest.mark.parametrize(("name", "kind", "sender"), [
    ("auto_reply_outlook.eml", AUTO_REPLY, "eva@example.org"),
    ("auto_reply_vacation.eml", AUTO_REPLY, "juergen@example.org"),
    ("auto_reply_xautoreply.eml", AUTO_REPLY, "luca@example.org"),
    ("unsubscribe_mailto.eml", UNSUBSCRIBE, "anna@example.org"),
    ("unsubscribe_reply_fr.eml", UNSUBSCRIBE, "elodie@example.org"),
    ("unsubscribe_token.eml", UNSUBSCRIBE, "luca.home@elsewhere.example"),
    ("malformed_dsn.eml", NOT_UNDERSTOOD, "mailer-daemon@broken.example.net"),
    ("not_understood.eml", NOT_UNDERSTOOD, "marta@example.org"),
])
def test_replies_are_told_apart(name: str, kind: str, sender: str) -> None:
    reading = read_message(fixture(name), RULES)
    assert (reading.kind, reading.sender, reading.failures) == (kind, sender, [])


def test_malformed_report_says_why() -> None:
    assert read_message(fixture("malformed_dsn.eml"), RULES).note == "a delivery report with no recipient that can be read"


@pytest.mark.parametrize(("line", "asked", "named"), [
    ("unsubscribe", True, []),
    ("Re: Unsubscribe!", True, []),
    ("AW: Bitte abmelden", True, []),
    ("afmelden graag", True, []),
    ("darse de baja", True, []),
    ("Cancellami", True, []),
    ("Me désinscrire, s'il vous plaît.", True, []),
    ("unsubscribe anna@example.org", True, ["anna@example.org"]),
    ("How do I unsubscribe my colleague from this?", False, []),
    ("Newsletter December 2025", False, []),
    ("", False, []),
])
def test_unsubscribe_words(line: str, asked: bool, named: list[str]) -> None:
    assert unsubscribe_line(line)[:2] == (asked, named)


@pytest.mark.parametrize(("status", "diagnostic", "kind", "code"), [
    ("5.1.1", "smtp; 550 5.1.1 user unknown", HARD, "5.1.1"),
    ("5.0.0", "smtp; 550 5.7.1 rejected as spam", REFUSED, "5.7.1"),
    ("5.0.0", "smtp; 550 Requested action not taken: mailbox unavailable", HARD, "5.0.0"),
    ("5.2.2", "smtp; 552 Mailbox full", SOFT, "5.2.2"),
    ("5.0.0", "smtp; 554 Sorry, the user's mailbox is over quota", SOFT, "5.0.0"),
    ("4.7.0", "smtp; 421 try later", SOFT, "4.7.0"),
    ("5.4.4", "X-Postfix; Host or domain name not found", HARD, "5.4.4"),
    ("5.3.4", "smtp; 552 message size exceeds fixed limit", REFUSED, "5.3.4"),
    ("", "no status here", NOT_UNDERSTOOD, ""),
])
def test_status_codes(status: str, diagnostic: str, kind: str, code: str) -> None:
    assert judge(status, diagnostic) == (kind, code)


# ---------------------------------------------------------------- a Maildir, end to end


def test_maildir_run_suppresses_hard_bounces_and_unsubscribes_and_reports(tmp_path: Path, run: Invoke) -> None:
    ws = workspace(tmp_path)
    box = maildir_of(tmp_path / "returned", *(fixture(n) for n in ALL_FIXTURES))
    before = (ws / "suppressed.csv").read_text(encoding="utf-8")

    result = run("-C", str(ws), "bounces", "--maildir", str(box))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        "issue 2025-12: delivered 14, hard 4, soft 2, unsubscribed 3, auto-replies 2, refused 1, not understood 1",
        "issue —: delivered 0, hard 0, soft 0, unsubscribed 0, auto-replies 1, refused 0, not understood 2",
    ]
    today = time.strftime("%Y-%m-%d")
    suppressed = sorted(line.split("\t")[1:4] for line in lines if line.startswith("suppressed\t"))
    assert suppressed == sorted([
        ["ex.unknown@example.org", "bounced 5.1.10", "2025-12"],
        ["old.exchange@example.org", "bounced 5.1.1", "2025-12"],
        ["gm.unknown@example.org", "bounced 5.1.1", "2025-12"],
        ["qm.unknown@example.org", "bounced 5.1.1", "2025-12"],
        ["anna@example.org", "unsubscribed", "2025-12"],
        ["elodie@example.org", "unsubscribed", "2025-12"],
        ["luca@example.org", "unsubscribed", "2025-12"],
    ])
    assert "Read 16 new message(s)" in result.stderr and "added 7 to suppressed.csv" in result.stderr

    # The user's comment, separator and columns are kept; the new rows carry reason, date, issue, reply.
    text = (ws / "suppressed.csv").read_text(encoding="utf-8")
    assert text.startswith("# People who asked to leave, kept by hand since 2019\nemail;reason;note;date;issue;reply\n"
                           "old@example.org;asked;by phone\n")
    assert text.count("\n") == before.count("\n") + 7
    gmail_row = next(line for line in text.splitlines() if line.startswith("gm.unknown@"))
    assert gmail_row.startswith(f"gm.unknown@example.org;bounced 5.1.1;;{today};2025-12;\"5.1.1 smtp; 550-5.1.1")

    # Needs a look: the refused one, the request for somebody else, the not understood ones.
    attention = {line.split("\t")[2]: line.split("\t")[0] for line in lines[2:] if not line.startswith("suppressed")}
    assert attention == {"blocked@example.org": REFUSED, "anna.second@example.org": UNSUBSCRIBE,
                         "mailer-daemon@broken.example.net": NOT_UNDERSTOOD, "marta@example.org": NOT_UNDERSTOOD}
    assert "asks to unsubscribe anna.second@example.org but comes from eve@example.org: not taken" in result.stdout

    # Understood mail is marked read (Maildir flag S); what needs a look is left unread in new/.
    left_new = {email.message_from_bytes(p.read_bytes())["Subject"] for p in (box / "new").iterdir()}
    assert left_new == {"Returned mail: see transcript for details", "Re: Newsletter December 2025",
                        "unsubscribe anna.second@example.org", "Undelivered Mail Returned to Sender"}
    assert all(p.name.endswith(":2,S") for p in (box / "cur").iterdir())
    assert count_messages(box) == 16  # nothing deleted

    # The soft bounces are counted, once per address and issue.
    state = json.loads((ws / "bounces.json").read_text(encoding="utf-8"))
    assert state["soft"] == {"full@example.org": {"2025-12": "5.2.2"}, "slow@example.org": {"2025-12": "4.4.1"}}

    again = run("-C", str(ws), "bounces", "--maildir", str(box))
    assert again.exit_code == 0
    assert again.stdout == ""
    assert "Read 0 new message(s)" in again.stderr and "added 0" in again.stderr
    assert (ws / "suppressed.csv").read_text(encoding="utf-8") == text


def test_the_next_send_skips_what_bounces_suppressed(tmp_path: Path, run: Invoke) -> None:
    ws = workspace(tmp_path)
    box = maildir_of(tmp_path / "returned", fixture("gmail.eml"), fixture("unsubscribe_mailto.eml"))
    assert run("-C", str(ws), "bounces", "--maildir", str(box)).exit_code == 0
    make_issue(ws, "2026-01")
    sent = run("-C", str(ws), "send", "2026-01", "--yes")
    assert sent.exit_code == 0, sent.stderr
    got = {e["email"] for e in read_results(ws / "issues" / "2026-01" / "send-log.jsonl")}
    assert got == {a for a, _, _ in SUBSCRIBERS} - {"gm.unknown@example.org", "anna@example.org"}


def test_dry_run_changes_nothing(tmp_path: Path, run: Invoke) -> None:
    ws = workspace(tmp_path)
    box = maildir_of(tmp_path / "returned", fixture("gmail.eml"), fixture("not_understood.eml"))
    before = (ws / "suppressed.csv").read_bytes()
    names = sorted(p.name for p in (box / "new").iterdir())
    result = run("-C", str(ws), "bounces", "--maildir", str(box), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "would suppress\tgm.unknown@example.org\tbounced 5.1.1\t2025-12\t" in result.stdout
    assert "would add 1 to suppressed.csv. Dry run: nothing changed." in result.stderr
    assert (ws / "suppressed.csv").read_bytes() == before
    assert not (ws / "bounces.json").exists()
    assert sorted(p.name for p in (box / "new").iterdir()) == names and not list((box / "cur").iterdir())


def test_json_report(tmp_path: Path, run: Invoke) -> None:
    ws = workspace(tmp_path)
    box = maildir_of(tmp_path / "returned", fixture("exchange_online.eml"), fixture("auto_reply_outlook.eml"))
    result = run("-C", str(ws), "bounces", "--maildir", str(box), "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["issues"] == [{"issue": "2025-12", "delivered": 14, "hard": 1, "soft": 0, "refused": 0,
                                 "unsubscribed": 0, "auto_replies": 1, "not_understood": 0}]
    assert [(s["email"], s["reason"], s["issue"]) for s in report["suppressed"]] == [
        ("ex.unknown@example.org", "bounced 5.1.10", "2025-12")]
    assert sorted((m["kind"], m["email"], m["action"]) for m in report["messages"]) == [
        (AUTO_REPLY, "eva@example.org", "ignored"), (HARD, "ex.unknown@example.org", "suppressed")]


def test_terminal_report_is_a_table(tmp_path: Path, run: Invoke) -> None:
    from cepletter.cli.env import Env

    ws = workspace(tmp_path)
    box = maildir_of(tmp_path / "returned", fixture("qmail.eml"), fixture("not_understood.eml"))
    result = run("-C", str(ws), "bounces", "--maildir", str(box), terminal=Env(stdout_terminal=True))
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "Returned mail by issue" in out and "Added to suppressed.csv" in out and "Needs a look" in out
    assert "qm.unknown@example.org" in out and "bounced 5.1.1" in out


# ---------------------------------------------------------------- attribution


def _dsn(final: str, *, status: str = "5.1.1", message_id: str = "", to: str = "bounces@example.org",
         action: str = "failed", diagnostic: str = "smtp; 550 5.1.1 user unknown") -> bytes:
    headers = f"\nMessage-ID: {message_id}\n" if message_id else "\n"
    return (
        f"Return-Path: <>\nFrom: MAILER-DAEMON@relay.example.net\nTo: {to}\n"
        "Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\n\n'
        "--B\nContent-Type: text/plain\n\nNot delivered.\n\n"
        "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; relay.example.net\n\n"
        f"Final-Recipient: rfc822; {final}\nAction: {action}\nStatus: {status}\nDiagnostic-Code: {diagnostic}\n\n"
        f"--B\nContent-Type: text/rfc822-headers\n{headers}\n--B--\n"
    ).encode()


def test_a_bounce_for_an_address_not_on_the_list_is_reported_not_guessed(tmp_path: Path, run: Invoke) -> None:
    ws = workspace(tmp_path)
    box = maildir_of(tmp_path / "returned", _dsn("stranger@example.net"), _dsn("eva@example.org", message_id="<x@y>"))
    write_journal(ws, "2025-12", addresses=[a for a, _, _ in SUBSCRIBERS if a != "eva@example.org"])
    result = run("-C", str(ws), "bounces", "--maildir", str(box))
    assert result.exit_code == 0, result.stderr
    assert "hard\t" in result.stdout
    assert "stranger@example.net is not on the list" in result.stdout
    assert "eva@example.org was never sent an issue (by the journals)" in result.stdout
    assert "added 0 to suppressed.csv" in result.stderr
    assert "stranger@" not in (ws / "suppressed.csv").read_text(encoding="utf-8")


def test_verp_names_the_subscriber_when_the_report_names_a_forwarding_address(tmp_path: Path, run: Invoke) -> None:
    ws = workspace(tmp_path, '[delivery]\nreturn_path = "bounces+{token}@example.org"\n')
    token = envelope_token("CEP Newsletter", Recipient("marta@example.org"))
    assert token == unsubscribe_token("CEP Newsletter", "marta@example.org")
    box = maildir_of(tmp_path / "returned", _dsn("marta.new@elsewhere.example", to=f"bounces+{token}@example.org"))
    result = run("-C", str(ws), "bounces", "--maildir", str(box))
    assert result.exit_code == 0, result.stderr
    assert "suppressed\tmarta@example.org\tbounced 5.1.1\t2025-12\t" in result.stdout


def test_return_path_is_the_envelope_sender_of_each_message(tmp_path: Path) -> None:
    from deliverykit import make_rendered

    settings = settings_from_dict(tmp_path, {
        "newsletter": {"name": "CEP Newsletter", "from": "CEP <newsletter@example.org>"},
        "delivery": {"return_path": "bounces+{token}@example.org"}}, tmp_path / "cepletter.toml")
    factory = MessageFactory(settings, make_rendered())
    anna = factory.build(Recipient("anna@example.org"))
    luca = factory.build(Recipient("luca@example.org", fields={"token": "luca-tok-2025x"}))
    web = factory.build_web()
    assert anna.sender == f"bounces+{unsubscribe_token('CEP Newsletter', 'anna@example.org')}@example.org"
    assert luca.sender == "bounces+luca-tok-2025x@example.org"
    assert web.sender == "newsletter@example.org"
    assert b"From: CEP <newsletter@example.org>" in anna.data


@pytest.mark.parametrize(("value", "problem"), [
    ("bounces.example.org", "is not an email address"),
    ("bounces+{email}@example.org", "unknown placeholder {email}"),
    ("bounces+{token}@", "is not an email address"),
])
def test_a_wrong_return_path_is_a_config_error(tmp_path: Path, value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_dict(tmp_path, {"newsletter": {"name": "N", "from": "n@example.org"},
                                      "delivery": {"return_path": value}}, tmp_path / "cepletter.toml")
    assert problem in str(caught.value) and "[delivery] return_path" in str(caught.value)


def test_soft_bounces_in_consecutive_issues_suppress(tmp_path: Path, run: Invoke) -> None:
    ws = workspace(tmp_path, "[bounces]\nsoft_limit = 3\n")
    for issue in ("2025-09", "2025-10", "2025-11"):
        write_journal(ws, issue)
    n = [a for a, _, _ in SUBSCRIBERS].index("full@example.org") + 1
    slow = [a for a, _, _ in SUBSCRIBERS].index("slow@example.org") + 1
    full = [_dsn("full@example.org", status="4.2.2", message_id=f"<{i}.{n}@example.org>",
                 diagnostic="smtp; 452 4.2.2 Mailbox full") for i in ("2025-10", "2025-11")]
    # slow@ bounced in 2025-09 and 2025-11, with 2025-10 delivered between: not consecutive.
    gaps = [_dsn("slow@example.org", status="4.4.1", message_id=f"<{i}.{slow}@example.org>", action="delayed")
            for i in ("2025-09", "2025-11", "2025-12")]
    box = maildir_of(tmp_path / "returned", *full, *gaps)
    first = run("-C", str(ws), "bounces", "--maildir", str(box))
    assert first.exit_code == 0, first.stderr
    assert "added 0" in first.stderr
    assert "suppressed\t" not in first.stdout

    mailbox.Maildir(box).add(_dsn("full@example.org", status="5.2.2", message_id=f"<2025-12.{n}@example.org>",
                                  diagnostic="smtp; 552 5.2.2 Mailbox full"))
    second = run("-C", str(ws), "bounces", "--maildir", str(box))
    assert second.exit_code == 0, second.stderr
    assert second.stdout.splitlines()[1].startswith(
        "suppressed\tfull@example.org\tsoft bounces in 3 consecutive issues\t2025-12\t5.2.2")
    state = json.loads((ws / "bounces.json").read_text(encoding="utf-8"))
    assert sorted(state["soft"]["slow@example.org"]) == ["2025-09", "2025-11", "2025-12"]
    assert "slow@" not in (ws / "suppressed.csv").read_text(encoding="utf-8")


def test_unsubscribe_only_for_the_sender_or_with_the_token(tmp_path: Path, run: Invoke) -> None:
    ws = workspace(tmp_path)
    anna_token = unsubscribe_token("CEP Newsletter", "anna.second@example.org")
    requests = [
        fixture("unsubscribe_for_somebody_else.eml"),  # eve asks for anna.second: not taken
        b"From: eve@example.org\nTo: communications@example.org\nSubject: Re: news\n\nunsubscribe marta@example.org\n",
        f"From: someone@elsewhere.example\nTo: unsubscribe+{anna_token}@example.org\nSubject: unsubscribe\n\n".encode(),
        b"From: stranger@elsewhere.example\nTo: unsubscribe@example.org\nSubject: unsubscribe\n\n",
    ]
    box = maildir_of(tmp_path / "returned", *requests)
    result = run("-C", str(ws), "bounces", "--maildir", str(box))
    assert result.exit_code == 0, result.stderr
    added = [line.split("\t")[1] for line in result.stdout.splitlines() if line.startswith("suppressed\t")]
    assert added == ["anna.second@example.org"]
    assert "asks to unsubscribe marta@example.org but comes from eve@example.org" in result.stdout
    assert "stranger@elsewhere.example is not on the list" in result.stdout
    text = (ws / "suppressed.csv").read_text(encoding="utf-8")
    assert "marta@" not in text and "eve@" not in text


# ---------------------------------------------------------------- a hostile mailbox


def _deep(levels: int) -> bytes:
    head = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(levels))
    tail = b"".join(b"\n--b%d--\n" % i for i in reversed(range(levels)))
    return b"From: x@example.net\nTo: unsubscribe@example.org\nSubject: deep\nMIME-Version: 1.0\n" + head + \
        b"Content-Type: text/plain\n\nunsubscribe\n" + tail


def _nested_messages(levels: int) -> bytes:
    data = b"From: a@example.net\nSubject: inner\n\nhi\n"
    for _ in range(levels):
        data = b"From: a@example.net\nContent-Type: message/rfc822\n\n" + data
    return data


def test_hostile_mailbox(tmp_path: Path, run: Invoke) -> None:
    ws = workspace(tmp_path)
    huge_attachment = b"A" * (12 * 1024 * 1024)
    huge_dsn = _dsn("gm.unknown@example.org", message_id="<2025-12.6@example.org>").replace(
        b"--B--\n", b"--B\nContent-Type: message/rfc822\n\nSubject: big\n\n" + huge_attachment + b"\n--B--\n")
    huge_other = b"From: marta@example.org\nSubject: photos\n\n" + b"x" * (20 * 1024 * 1024)
    bad_encodings = (
        b"From: =?x-unknown?B?////?= <eva@example.org>\nTo: unsubscribe@example.org\n"
        b"Subject: =?utf-8?B?!!!notbase64?= \xff\xfe caf\xe9\nMIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=x-nonsense\nContent-Transfer-Encoding: base64\n\n%%%% not base64 \xff\n"
    )
    binary = bytes(range(256)) * 100
    messages = [huge_dsn, huge_other, _deep(5000), _nested_messages(3000), bad_encodings, binary, b"",
                fixture("unsubscribe_for_somebody_else.eml")]
    box = maildir_of(tmp_path / "returned", *messages)
    result = run("-C", str(ws), "bounces", "--maildir", str(box), "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    by_subject = {(m["subject"], m["kind"], m["email"], m["action"]) for m in report["messages"]}
    assert ("Undelivered Mail Returned to Sender", HARD, "gm.unknown@example.org", "suppressed") in by_subject
    assert ("photos", NOT_UNDERSTOOD, "marta@example.org", "left unread") in by_subject
    assert ("deep", NOT_UNDERSTOOD, "x@example.net", "left unread") in by_subject
    # A request with undecodable parts is still read: it comes from eva, to the unsubscribe address.
    assert any(k == UNSUBSCRIBE and e == "eva@example.org" and a == "suppressed" for _, k, e, a in by_subject)
    notes = [m["note"] for m in report["messages"]]
    assert notes.count("more than 200 MIME parts: not read further") == 2  # the two deep ones
    assert "message cut at its first megabytes, and not a bounce in the part read" in notes
    assert ("unsubscribe anna.second@example.org", UNSUBSCRIBE, "anna.second@example.org", "reported") in by_subject
    assert sum(1 for m in report["messages"] if m["kind"] == NOT_UNDERSTOOD) == 5  # photos, 2 deep, binary, empty
    assert sorted(s["email"] for s in report["suppressed"]) == ["eva@example.org", "gm.unknown@example.org"]
    assert len(report["messages"]) == len(messages)


# ---------------------------------------------------------------- mbox


def test_mbox_is_read_once_and_never_changed(tmp_path: Path, run: Invoke) -> None:
    ws = workspace(tmp_path)
    path = tmp_path / "returned.mbox"
    box = mailbox.mbox(path)
    for name in ("qmail.eml", "auto_reply_vacation.eml"):
        box.add(fixture(name))
    box.flush()
    before = path.read_bytes()
    result = run("-C", str(ws), "bounces", "--mbox", str(path))
    assert result.exit_code == 0, result.stderr
    assert "suppressed\tqm.unknown@example.org\tbounced 5.1.1\t2025-12" in result.stdout
    assert path.read_bytes() == before
    box.add(fixture("unsubscribe_mailto.eml"))
    box.flush()
    again = run("-C", str(ws), "bounces", "--mbox", str(path))
    assert "Read 1 new message(s)" in again.stderr
    assert "suppressed\tanna@example.org\tunsubscribed" in again.stdout

    moved = run("-C", str(ws), "bounces", "--mbox", str(path), "--move-to", "Done")
    assert moved.exit_code == 2
    assert "--move-to works with IMAP and Maildir, not an mbox file" in moved.stderr


def test_maildir_move_to_moves_what_was_dealt_with(tmp_path: Path, run: Invoke) -> None:
    ws = workspace(tmp_path)
    box = maildir_of(tmp_path / "returned", fixture("gmail.eml"), fixture("auto_reply_outlook.eml"),
                     fixture("not_understood.eml"))
    result = run("-C", str(ws), "bounces", "--maildir", str(box), "--move-to", "Processed")
    assert result.exit_code == 0, result.stderr
    assert count_messages(box / ".Processed") == 2
    left = [email.message_from_bytes(p.read_bytes())["From"] for p in (box / "new").iterdir()]
    assert left == ["Marta Silva <marta@example.org>"]
    assert not list((box / "cur").iterdir())


def test_not_a_maildir_and_no_imap_settings_are_clear_errors(tmp_path: Path, run: Invoke) -> None:
    ws = workspace(tmp_path)
    (tmp_path / "plain").mkdir()
    result = run("-C", str(ws), "bounces", "--maildir", str(tmp_path / "plain"))
    assert result.exit_code == 1
    assert "not a Maildir (no new/ and cur/ folders in it)" in result.stderr
    result = run("-C", str(ws), "bounces")
    assert result.exit_code == 1
    assert "[bounces] host: not set, and neither --maildir nor --mbox was given" in result.stderr


# ---------------------------------------------------------------- a real IMAP server


@pytest.fixture
def imap(tmp_path: Path):  # type: ignore[no-untyped-def]
    cert = make_ca(tmp_path / "tls")
    with Dovecot(cert) as server:
        server.ca = cert.ca  # type: ignore[attr-defined]
        yield server


def _imap_toml(server: Dovecot, ca: Path, security: str = "ssl") -> str:
    port = server.imaps_port if security == "ssl" else server.imap_port
    return (f'[bounces]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "{security}"\n'
            f'username = "{server.user}"\nca_file = "{ca}"\ntimeout = 20\n')


def _client(server: Dovecot, ca: Path) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL("127.0.0.1", server.imaps_port, ssl_context=ssl.create_default_context(cafile=str(ca)))
    client.authenticate("PLAIN", lambda _: f"\0{server.user}\0{server.password}".encode())
    return client


def _append(server: Dovecot, ca: Path, *messages: bytes) -> None:
    client = _client(server, ca)
    for data in messages:
        assert client.append("INBOX", None, None, data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))[0] == "OK"
    client.logout()


def _flags(server: Dovecot, ca: Path, folder: str = "INBOX") -> dict[str, bool]:
    """Subject → whether the message is \\Seen."""
    client = _client(server, ca)
    client.select(folder, readonly=True)
    out = {}
    _, data = client.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    for item in data:
        if isinstance(item, tuple):
            subject = email.message_from_bytes(item[1])["Subject"]
            out[subject] = b"\\Seen" in item[0]
    client.logout()
    return out


def test_imap_reads_each_message_once_and_marks_only_what_it_understood(tmp_path: Path, run: Invoke, imap: Dovecot,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    ca: Path = imap.ca  # type: ignore[attr-defined]
    ws = workspace(tmp_path, _imap_toml(imap, ca))
    monkeypatch.setenv("CEPLETTER_IMAP_PASSWORD", imap.password)
    _append(imap, ca, fixture("exchange_online.eml"), fixture("not_understood.eml"), fixture("auto_reply_outlook.eml"))

    dry = run("-C", str(ws), "bounces", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "would suppress\tex.unknown@example.org" in dry.stdout
    assert not any(_flags(imap, ca).values())

    result = run("-C", str(ws), "bounces")
    assert result.exit_code == 0, result.stderr
    assert f"Read 3 new message(s) from IMAP {imap.user}@127.0.0.1:{imap.imaps_port}/INBOX (ssl)" in result.stderr
    assert "suppressed\tex.unknown@example.org\tbounced 5.1.10\t2025-12" in result.stdout
    assert _flags(imap, ca) == {"Undeliverable: Newsletter December 2025": True,
                                "Re: Newsletter December 2025": False,
                                "Automatic reply: Newsletter December 2025": True}
    state = json.loads((ws / "bounces.json").read_text(encoding="utf-8"))
    box_state = state["mailboxes"][f"imap://{imap.user}@127.0.0.1:{imap.imaps_port}/INBOX"]
    assert box_state["last_uid"] == 3 and box_state["uidvalidity"] > 0

    again = run("-C", str(ws), "bounces")
    assert "Read 0 new message(s)" in again.stderr

    _append(imap, ca, fixture("gmail.eml"))
    third = run("-C", str(ws), "bounces", "--move-to", "Processed")
    assert third.exit_code == 0, third.stderr
    assert "Read 1 new message(s)" in third.stderr
    assert list(_flags(imap, ca, "Processed")) == ["Delivery Status Notification (Failure)"]
    assert len(_flags(imap, ca)) == 3

    # A renumbered folder (new UIDVALIDITY) is read again; what it finds is already in the list.
    box_state = json.loads((ws / "bounces.json").read_text(encoding="utf-8"))
    box_state["mailboxes"][f"imap://{imap.user}@127.0.0.1:{imap.imaps_port}/INBOX"]["uidvalidity"] = 1
    (ws / "bounces.json").write_text(json.dumps(box_state), encoding="utf-8")
    renumbered = run("-C", str(ws), "bounces")
    assert renumbered.exit_code == 0, renumbered.stderr
    assert "UIDVALIDITY changed" in renumbered.stderr and "Read 3 new message(s)" in renumbered.stderr
    assert "added 0 to suppressed.csv" in renumbered.stderr


def test_imap_starttls_and_a_password_beyond_ascii(tmp_path: Path, run: Invoke, imap: Dovecot,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ca: Path = imap.ca  # type: ignore[attr-defined]
    ws = workspace(tmp_path, _imap_toml(imap, ca, "starttls"))
    monkeypatch.setenv("CEPLETTER_IMAP_PASSWORD", imap.password)
    assert not imap.password.isascii()
    _append(imap, ca, fixture("qmail.eml"))
    result = run("-C", str(ws), "bounces")
    assert result.exit_code == 0, result.stderr
    assert "suppressed\tqm.unknown@example.org" in result.stdout


def test_imap_errors_say_what_to_do(tmp_path: Path, run: Invoke, imap: Dovecot, monkeypatch: pytest.MonkeyPatch) -> None:
    ca: Path = imap.ca  # type: ignore[attr-defined]
    ws = workspace(tmp_path, _imap_toml(imap, ca))
    no_password = run("-C", str(ws), "bounces")
    assert no_password.exit_code == 1
    assert f"no IMAP password for {imap.user} on 127.0.0.1" in no_password.stderr
    assert "CEPLETTER_IMAP_PASSWORD" in no_password.stderr

    monkeypatch.setenv("CEPLETTER_IMAP_PASSWORD", "wrong password")
    wrong = run("-C", str(ws), "bounces")
    assert wrong.exit_code == 1
    assert f"refused the login of {imap.user}" in wrong.stderr and "wrong password" not in wrong.stderr

    untrusted = make_self_signed(tmp_path / "other")
    ws2 = workspace(tmp_path / "two", _imap_toml(imap, untrusted.cert))
    monkeypatch.setenv("CEPLETTER_IMAP_PASSWORD", imap.password)
    result = run("-C", str(ws2), "bounces")
    assert result.exit_code == 1
    assert "the IMAP server's certificate is not trusted" in result.stderr
    assert "[bounces] ca_file" in result.stderr


# ---------------------------------------------------------------- real Postfix bounces


KNOWN = ["anna@example.com", "eva@example.com"]
UNKNOWN = ["nobody@example.com", "gone@example.com"]


def _postfix_workspace(tmp_path: Path, relay: Postfix) -> Path:
    subscribers = "email,name\n" + "".join(f"{a},Reader {i}\n" for i, a in enumerate(KNOWN + UNKNOWN))
    return make_workspace(tmp_path / "ws", (
        f'[delivery]\ntransport = "smtp"\nrate = 1000\nreturn_path = "bounces+{{token}}@example.org"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {relay.port}\nsecurity = "none"\ntimeout = 20\n'), subscribers)


def _send_through(relay: Postfix, ws: Path, run: Invoke, issue: str) -> None:
    result = run("-C", str(ws), "send", issue, "--yes", "--unreviewed")
    assert result.exit_code == 0, result.stderr


def _relay() -> Postfix:
    # nobody@ is unknown to virtual(8); gone@ goes through the error(8) transport.
    return Postfix(mailboxes={a: a.partition("@")[0] for a in KNOWN}, catch_all={"example.org": "returned"},
                   errors={"gone@example.com": "5.1.1 User unknown in this relay"})


def _after_bounces_the_next_send_skips_them(ws: Path, relay: Postfix, run: Invoke) -> None:
    make_issue(ws, "2026-01", subject="Newsletter January 2026")
    _send_through(relay, ws, run, "2026-01")
    sent = {e["email"] for e in read_results(ws / "issues" / "2026-01" / "send-log.jsonl")}
    assert sent == set(KNOWN)
    for address in KNOWN:
        relay.wait_for(address.partition("@")[0], 2)
    assert count_messages(relay.maildir("returned")) == 2  # no new bounces


def test_postfix_bounces_unknown_users_and_the_next_send_skips_them(tmp_path: Path, run: Invoke) -> None:
    with _relay() as relay:
        ws = _postfix_workspace(tmp_path, relay)
        _send_through(relay, ws, run, "2025-12")
        returned = relay.wait_for("returned", 2)
        for address in KNOWN:
            relay.wait_for(address.partition("@")[0], 1)
        # Real RFC 3464 reports, returned to each subscriber's own VERP address.
        reports = [email.message_from_bytes(p.read_bytes()) for sub in ("new", "cur") for p in (returned / sub).iterdir()]
        assert all(r.get_content_type() == "multipart/report" for r in reports)
        assert {r["Delivered-To"] for r in reports} == {
            f"bounces+{unsubscribe_token('CEP Newsletter', a)}@example.org" for a in UNKNOWN}

        result = run("-C", str(ws), "bounces", "--maildir", str(returned))
        assert result.exit_code == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == ("issue 2025-12: delivered 4, hard 2, soft 0, unsubscribed 0, auto-replies 0, refused 0, "
                            "not understood 0")
        assert sorted(line.split("\t")[1:3] for line in lines[1:]) == [
            ["gone@example.com", "bounced 5.1.1"], ["nobody@example.com", "bounced 5.1.1"]]
        suppressed = (ws / "suppressed.csv").read_text(encoding="utf-8").splitlines()
        assert suppressed[:2] == ["email,reason,date,issue,reply", "gone@example.org"]
        assert sorted(row.split(",")[0] for row in suppressed[2:]) == sorted(UNKNOWN)
        _after_bounces_the_next_send_skips_them(ws, relay, run)


def test_postfix_bounces_read_over_imap(tmp_path: Path, run: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    cert = make_ca(tmp_path / "tls")
    with _relay() as relay:
        ws = _postfix_workspace(tmp_path, relay)
        _send_through(relay, ws, run, "2025-12")
        relay.wait_for("returned", 2)
        with Dovecot(cert, relay.maildir("returned")) as server:
            with (ws / "cepletter.toml").open("a", encoding="utf-8") as fh:
                fh.write(_imap_toml(server, cert.ca or cert.cert))
            monkeypatch.setenv("CEPLETTER_IMAP_PASSWORD", server.password)
            result = run("-C", str(ws), "bounces")
            assert result.exit_code == 0, result.stderr
            added = sorted(line.split("\t")[1] for line in result.stdout.splitlines() if line.startswith("suppressed"))
            assert added == sorted(UNKNOWN)
            assert all(_flags(server, cert.ca or cert.cert).values())
        _after_bounces_the_next_send_skips_them(ws, relay, run)


def test_no_server_processes_are_left(tmp_path: Path) -> None:
    """The helpers stop what they start: no master process of a private instance outlives its test."""
    with _relay() as relay:
        pid_file = relay.folder / "queue" / "pid" / "master.pid"
        pid = int(pid_file.read_text().split()[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
