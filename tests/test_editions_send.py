"""An issue with an English and a French edition, sent to a mixed list over a real SMTP server (aiosmtpd).

Each subscriber gets the edition their language column picks, exactly once,
through one journal: a deferred French reader gets French on the next run,
and a reader whose language changes after the send is not mailed again.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

from conftest import Invoke
from deliverykit import make_workspace
from smtpservers import Rule, SmtpServer

from cepletter.deliver.journal import read_lines, read_results

JOURNAL = Path("issues/2025-12/send-log.jsonl")
SUBSCRIBERS = (
    "email,name,language\n"
    "anna@example.org,Anna Jansen,en\n"
    "marie@example.org,Marie Dubois,fr\n"
    "luc@example.org,Luc Martin,FR\n"
    "jean@example.org,Jean Leroy,Français\n"
    "luca@example.org,Luca Rossi,\n"
    "eva@example.org,Eva Novák,de\n"
)
EDITION = {
    "anna@example.org": "en", "marie@example.org": "fr", "luc@example.org": "fr", "jean@example.org": "fr",
    "luca@example.org": "en",  # no language: the newsletter's
    "eva@example.org": "en",  # German: no such edition, the newsletter's
}
FRENCH = """\
---
title: Décembre 2025
subject: Lettre d'information de décembre 2025
sections:
  News: Actualités
items:
  "https://example.org/news/0":
    title: "Actualité 0 : la probation en Europe"
    summary: <p>Résumé de l'article 0.</p>
  "https://example.org/news/1":
    title: "Actualité 1 : la probation en Europe"
    summary: <p>Résumé de l'article 1.</p>
  "https://example.org/news/2":
    title: "Actualité 2 : la probation en Europe"
    summary: <p>Résumé de l'article 2.</p>
---

Bienvenue dans le numéro de **décembre**.
"""
SUBJECTS = {"en": "Newsletter December 2025", "fr": "Lettre d'information de décembre 2025"}


def smtp_toml(port: int) -> str:
    # No retries: a subscriber the server defers waits for the next run.
    return (
        '[delivery]\ntransport = "smtp"\nrate = 1000\nconnections = 2\nretries = 0\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout = 10\n'
    )


def _bilingual(root: Path, port: int) -> Path:
    ws = make_workspace(root, toml_extra=smtp_toml(port), subscribers=SUBSCRIBERS)
    (ws / "issues" / "2025-12" / "issue.fr.md").write_text(FRENCH, encoding="utf-8")
    return ws


def _parsed(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def _language_of(message: EmailMessage) -> str:
    """Which edition a message is, from what it says (subject, body), checked to be one or the other whole."""
    subject, text = str(message["Subject"]), _text(message)
    html_part = message.get_body(("html",))
    assert html_part is not None
    html = str(html_part.get_content())
    if subject.endswith(SUBJECTS["fr"]):
        assert "Bienvenue dans le numéro de décembre." in text and "Lire la suite" in text
        assert "Actualité 0 : la probation en Europe" in text and "Read more" not in text
        assert '<html lang="fr" dir="ltr">' in html
        return "fr"
    assert subject.endswith(SUBJECTS["en"]), subject
    assert "Welcome to the December issue." in text and "Read more" in text
    assert "Lire la suite" not in text and "Actualité" not in text
    assert '<html lang="en" dir="ltr">' in html
    return "en"


def test_each_subscriber_gets_their_edition_exactly_once(tmp_path: Path, run: Invoke) -> None:
    # The server defers jean once: the first run leaves him waiting, the next one sends him French.
    with SmtpServer(rules={"jean@example.org": Rule("451", times=1)}) as server:
        ws = _bilingual(tmp_path / "ws", server.port)

        refused = run("-C", str(ws), "send", "--yes")
        assert refused.exit_code == 1
        assert "Error: issue 2025-12: the en, fr editions of this content have not been reviewed" in refused.stderr
        assert server.messages == []

        tested = run("-C", str(ws), "send", "--test", "me@example.org")
        assert tested.exit_code == 0, tested.stderr
        assert "Test of issue 2025-12 (en, fr editions) sent to me@example.org" in tested.stderr
        tests = sorted(str(_parsed(m.data)["Subject"]) for m in server.messages)
        assert tests == [f"[TEST] {SUBJECTS['fr']}", f"[TEST] {SUBJECTS['en']}"]

        first = run("-C", str(ws), "send", "--yes")
        assert first.exit_code == 1, first.stderr  # jean deferred
        assert "Editions:   en 3, fr 3 (each subscriber gets one, by the list's language column)" in first.stderr
        assert f"  fr:       {SUBJECTS['fr']}" in first.stderr
        assert "jean@example.org" in first.stdout

        second = run("-C", str(ws), "send", "--yes")
        assert second.exit_code == 0, second.stderr
        assert "Editions:   en 0, fr 1" in second.stderr

        # eva now reads French; she has the issue already, in English, and is not mailed again.
        (ws / "subscribers.csv").write_text(SUBSCRIBERS.replace("Eva Novák,de", "Eva Novák,fr"), encoding="utf-8")
        third = run("-C", str(ws), "send", "--yes")
        assert third.exit_code == 0, third.stderr
        assert "Nothing to send" in third.stderr

    delivered = [m for m in server.messages if m.recipients != ("me@example.org",)]
    assert server.received_by() == {"me@example.org": 2, **dict.fromkeys(EDITION, 1)}
    got = {}
    for message in delivered:
        (address,) = message.recipients
        got[address] = _language_of(_parsed(message.data))
    assert got == EDITION

    # One journal for both editions: each address sent once; the start events list the editions.
    results = [r for r in read_results(ws / JOURNAL) if r["status"] == "sent"]
    assert sorted(r["email"] for r in results) == sorted(EDITION)
    starts = [e for e in read_lines(ws / JOURNAL) if e.get("event") == "start"]
    assert [s["editions"] for s in starts] == [
        {"en": {"subject": SUBJECTS["en"], "recipients": 3}, "fr": {"subject": SUBJECTS["fr"], "recipients": 3}},
        {"en": {"subject": SUBJECTS["en"], "recipients": 0}, "fr": {"subject": SUBJECTS["fr"], "recipients": 1}},
    ]


def test_a_test_send_of_one_edition_reviews_only_that_one(tmp_path: Path, run: Invoke) -> None:
    with SmtpServer() as server:
        ws = _bilingual(tmp_path / "ws", server.port)
        tested = run("-C", str(ws), "send", "--test", "me@example.org", "--lang", "fr")
        assert tested.exit_code == 0, tested.stderr
        assert [str(_parsed(m.data)["Subject"]) for m in server.messages] == [f"[TEST] {SUBJECTS['fr']}"]
        refused = run("-C", str(ws), "send", "--yes")
        assert refused.exit_code == 1
        assert "the en edition of this content has not been reviewed" in refused.stderr
        assert len(server.messages) == 1
        wrong = run("-C", str(ws), "send", "--lang", "fr", "--yes")
        assert wrong.exit_code == 2 and "--lang goes with --test" in wrong.stderr


def test_the_mbox_export_gives_each_subscriber_their_edition(tmp_path: Path, run: Invoke) -> None:
    import mailbox

    ws = _bilingual(tmp_path / "ws", 2525)
    result = run("-C", str(ws), "export", "--format", "mbox")
    assert result.exit_code == 0, result.stderr
    box = mailbox.mbox(ws / "issues" / "2025-12" / "build" / "2025-12.mbox")
    got = {}
    for message in box:
        parsed = _parsed(message.as_bytes())
        got[email.utils.parseaddr(str(parsed["To"]))[1]] = _language_of(parsed)
    box.close()
    assert got == EDITION
