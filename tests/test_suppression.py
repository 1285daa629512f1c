"""deliver/suppression.py: which refusals mean an address is gone, and adding it to the list as written."""

from __future__ import annotations

import codecs
import multiprocessing
from pathlib import Path

import pytest

from cepletter.deliver.suppression import UNKNOWN_ADDRESS, Entry, add, address_gone
from cepletter.errors import SubscriberError
from cepletter.message.subscribers import read_suppressed

# Replies as real servers send them (collapsed to one line, as the journal keeps them).
GONE = [
    "550 5.1.1 <anna@example.org>: Recipient address rejected: User unknown in virtual mailbox table",  # Postfix
    "550-5.1.1 The email account that you tried to reach does not exist. Please try double-checking",  # Gmail
    "550 5.1.1 RESOLVER.ADR.RecipNotFound; not found",  # Exchange
    "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",  # Exchange Online
    "550 5.1.0 Address rejected",
    "550 5.2.1 The email account that you tried to reach is disabled.",
    "550 sorry, no mailbox here by that name. (#5.1.1)",  # qmail
    "550 User unknown",
    "550 No such user here",
    "553 Recipient unknown",
    "554 5.0.0 <x@example.org>... User unknown",  # Sendmail with a generic enhanced code
    "550 Mailbox does not exist",
    "5.1.1",  # a DSN's Status field
    "smtp; 550 5.1.1 user unknown",  # a DSN's Diagnostic-Code field
]
NOT_GONE = [
    "550 5.7.1 Message rejected as spam; user unknown to the sender policy",
    "554 5.7.1 <x@example.org>: Relay access denied",
    "550 5.7.606 Access denied, banned sending IP",
    "552 5.2.2 Mailbox full",
    "552 5.3.4 Message size exceeds fixed limit",
    "450 4.1.1 <x@example.org>: Recipient address rejected: User unknown in local recipient table",
    "451 4.3.2 System busy, try again later",
    "550 Requested action not taken: mailbox unavailable",
    "550 5.1.2 Bad destination system address",
    "550 Sender address does not exist",
    "550 5.5.0 Requested action not taken: mailbox unavailable (S2017062302)",
    "250 2.1.5 Ok",
    "connection lost: Connection unexpectedly closed",
    "",
]


@pytest.mark.parametrize("reply", GONE)
def test_replies_that_mean_the_address_is_gone(reply: str) -> None:
    assert address_gone(reply)


@pytest.mark.parametrize("reply", NOT_GONE)
def test_replies_that_do_not(reply: str) -> None:
    assert not address_gone(reply)


def entry(address: str, reply: str = "550 5.1.1 User unknown") -> Entry:
    return Entry(address, UNKNOWN_ADDRESS, issue="2025-12", reply=reply, date="2025-12-03")


def test_a_new_list_is_made_with_a_header_row(tmp_path: Path) -> None:
    path = tmp_path / "suppressed.csv"
    added = add(path, [entry("dead@example.org")])
    assert [e.email for e in added] == ["dead@example.org"]
    assert path.read_text() == ("email,reason,date,issue,reply\n"
                                "dead@example.org,address unknown,2025-12-03,2025-12,550 5.1.1 User unknown\n")


def test_the_users_file_is_kept_byte_for_byte_and_missing_columns_are_added(tmp_path: Path) -> None:
    path = tmp_path / "suppressed.csv"
    # Windows-1252, semicolons, CRLF, a comment, a column of the person's own and no final line end.
    before = "# Nie wieder anschreiben\r\nE-Mail;Grund;Notiz\r\nJürgen <j@example.org>;abgemeldet;am Telefon".encode("cp1252")
    path.write_bytes(before)
    add(path, [entry("dead@example.org", "550 5.1.1 <dead@example.org>: unknown; see =HYPERLINK(x)"),
               entry("J@EXAMPLE.org")])  # already in the list, in another form: not added twice
    after = path.read_bytes()
    lines = after.split(b"\r\n")
    assert lines[0] == b"# Nie wieder anschreiben"
    assert lines[1] == b"E-Mail;Grund;Notiz;date;issue;reply"
    assert lines[2] == "Jürgen <j@example.org>;abgemeldet;am Telefon".encode("cp1252")
    assert lines[3] == b'dead@example.org;address unknown;;2025-12-03;2025-12;"550 5.1.1 <dead@example.org>: unknown; see =HYPERLINK(x)"'
    assert lines[4:] == [b""]
    assert read_suppressed(path) == {"j@example.org", "dead@example.org"}


def test_a_utf16_list_stays_utf16_with_its_mark_and_tabs(tmp_path: Path) -> None:
    path = tmp_path / "suppressed.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + "Email\tReason\tDate\r\nzoë@example.org\tdésinscrite\t2025-01-02\r\n"
                     .encode("utf-16-le"))
    add(path, [entry("dead@example.org", "550 5.1.1 Überhaupt unbekannt")])
    data = path.read_bytes()
    assert data.startswith(codecs.BOM_UTF16_LE)
    assert data[2:].decode("utf-16-le").split("\r\n") == [
        "Email\tReason\tDate\tissue\treply",
        "zoë@example.org\tdésinscrite\t2025-01-02",
        "dead@example.org\taddress unknown\t2025-12-03\t2025-12\t550 5.1.1 Überhaupt unbekannt",
        "",
    ]
    assert read_suppressed(path) == {"zoë@example.org", "dead@example.org"}


def test_a_mixed_file_keeps_its_stray_byte_and_gets_utf8_rows(tmp_path: Path) -> None:
    path = tmp_path / "suppressed.csv"
    before = "email,reason\nzoë@example.org,désinscrite\n".encode() + b"rene@example.org,d\xe9sinscrit\n"
    path.write_bytes(before)
    add(path, [entry("dead@example.org", "550 5.1.1 Benutzer unbekannt: Jürgen")])
    after = path.read_bytes()
    assert after.startswith(b"email,reason,date,issue,reply\n" + before[len(b"email,reason\n"):])
    assert after.endswith("dead@example.org,address unknown,2025-12-03,2025-12,550 5.1.1 Benutzer unbekannt: Jürgen\n"
                          .encode())


def test_a_bare_list_of_addresses_gets_the_details_beside_the_address(tmp_path: Path) -> None:
    path = tmp_path / "suppressed.csv"
    path.write_text("gone@example.org\nold@example.org\n")
    add(path, [entry("dead@example.org"), entry("#hash@example.org")])
    assert path.read_text() == ("gone@example.org\nold@example.org\n"
                                "dead@example.org,address unknown,2025-12-03,2025-12,550 5.1.1 User unknown\n"
                                '"#hash@example.org","address unknown","2025-12-03","2025-12","550 5.1.1 User unknown"\n')
    # The quoted "#" row is an address, not a comment.
    assert read_suppressed(path) == {"gone@example.org", "old@example.org", "dead@example.org", "#hash@example.org"}


def test_existing_columns_of_ours_are_filled_where_they_are(tmp_path: Path) -> None:
    path = tmp_path / "suppressed.csv"
    path.write_text("Date,Email,Reply,Reason,Issue\n")
    add(path, [entry("dead@example.org")])
    assert path.read_text().splitlines()[1] == "2025-12-03,dead@example.org,550 5.1.1 User unknown,address unknown,2025-12"


def test_the_link_is_followed_and_the_mode_kept(tmp_path: Path) -> None:
    real = tmp_path / "lists" / "suppressed.csv"
    real.parent.mkdir()
    real.write_text("email\n")
    real.chmod(0o640)
    link = tmp_path / "suppressed.csv"
    link.symlink_to(real)
    add(link, [entry("dead@example.org")])
    assert link.is_symlink() and "dead@example.org" in real.read_text()
    assert real.stat().st_mode & 0o777 == 0o640


def test_nothing_new_leaves_the_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "suppressed.csv"
    path.write_text("email\ndead@example.org\n")
    stamp = path.stat().st_mtime_ns
    assert add(path, [entry("DEAD@example.org"), entry(" dead@Example.ORG ")]) == []
    assert path.stat().st_mtime_ns == stamp


def test_a_list_that_cannot_be_read_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "suppressed.csv"
    path.write_text("name,phone\nAnna,123\n")
    with pytest.raises(SubscriberError, match="no email column"):
        add(path, [entry("dead@example.org")])
    assert path.read_text() == "name,phone\nAnna,123\n"


def _add_many(path: str, start: int) -> None:
    for i in range(start, start + 25):
        add(Path(path), [entry(f"user{i}@example.org")])


def test_two_processes_adding_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "suppressed.csv"
    path.write_text("email,reason\n")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_add_many, args=(str(path), start)) for start in (0, 100)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    expected = {f"user{i}@example.org" for i in [*range(25), *range(100, 125)]}
    assert read_suppressed(path) == expected
    assert len(path.read_text().splitlines()) == 1 + len(expected)


def test_the_date_is_today_when_not_given(tmp_path: Path) -> None:
    from datetime import date

    path = tmp_path / "suppressed.csv"
    before = date.today().isoformat()
    [added] = add(path, [Entry("dead@example.org", "bounced")])
    assert added.date in {before, date.today().isoformat()}  # the clock may pass midnight meanwhile
    assert f"dead@example.org,bounced,{added.date}\n" in path.read_text()


def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_written_as_text(tmp_path: Path) -> None:
    # A bounce's text is chosen by whoever sent it; opened in a spreadsheet it must stay text.
    path = tmp_path / "suppressed.csv"
    add(path, [Entry("dead@example.org", "=HYPERLINK(\"http://x\")", reply="+1 line\r\nsecond line")])
    row = path.read_text().splitlines()[1]
    assert row.startswith("dead@example.org,\"'=HYPERLINK(\"\"http://x\"\")\",")
    assert row.endswith(",'+1 line second line")
