"""Subscriber lists as people really have them: spreadsheet exports, BOMs, junk rows."""

from __future__ import annotations

import codecs
import csv
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cepletter.errors import SubscriberError
from cepletter.message.recipient import Recipient
from cepletter.message.subscribers import (
    Invalid,
    ListCounts,
    SubscriberFile,
    check_address,
    detect_encoding,
    read_suppressed,
    recipients,
)


def rows(path: Path) -> list[Recipient | Invalid]:
    return list(SubscriberFile(path).rows())


def test_spreadsheet_export_windows_1252_semicolons(tmp_path: Path) -> None:
    # What a spreadsheet on a European Windows machine writes: cp1252, ";", CRLF, a quoted field.
    text = (
        "E-mail;Name;Country\r\n"
        "marie.dubois@example.org;Marie Dubois;France\r\n"
        "eva.novak@example.org;Eva Novák;Czechia\r\n"
        "not-an-address;Broken Row;Belgium\r\n"
        ";No Address;Spain\r\n"
        "MARIE.DUBOIS@example.org;Marie again;France\r\n"
        '"jose@example.org";"Peña, José";España\r\n'
        ";;\r\n"
        "gone@example.org;Gone;Malta\r\n"
    )
    path = tmp_path / "subscribers.csv"
    path.write_bytes(text.encode("cp1252"))
    assert detect_encoding(path) == "cp1252"
    counts = ListCounts()
    invalid: list[Invalid] = []
    got = list(recipients(path, {"gone@example.org"}, set(), counts, invalid))
    assert [(r.email, r.name) for r in got] == [
        ("marie.dubois@example.org", "Marie Dubois"),
        ("eva.novak@example.org", "Eva Novák"),
        ("jose@example.org", "Peña, José"),
    ]
    assert got[1].fields == {"E-mail": "eva.novak@example.org", "Name": "Eva Novák", "Country": "Czechia", "name": "Eva Novák"}
    assert got[0].line == 2
    assert [(i.line, i.value) for i in invalid] == [(4, "not-an-address"), (5, "")]
    assert counts == ListCounts(rows=7, invalid=2, duplicates=1, suppressed=1, already_sent=0, to_send=3)


def test_utf8_with_bom_and_header_spelling(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes("\ufeffEmail Address,First name,Last name\nzoe@example.org,Zoë,Ünal\n".encode())
    assert detect_encoding(path) == "utf-8-sig"
    [row] = rows(path)
    assert isinstance(row, Recipient)
    assert (row.email, row.name) == ("zoe@example.org", "Zoë Ünal")


def test_domain_is_normalised_and_duplicates_found_case_insensitively(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("email\nAnna@Example.ORG\nanna@example.org\n anna@EXAMPLE.org \n", encoding="utf-8")
    counts = ListCounts()
    got = list(recipients(path, set(), set(), counts))
    assert [r.email for r in got] == ["Anna@example.org"]
    assert counts.duplicates == 2


def test_already_sent_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("email\na@example.org\nb@example.org\n", encoding="utf-8")
    counts = ListCounts()
    got = list(recipients(path, set(), {"a@example.org"}, counts))
    assert [r.email for r in got] == ["b@example.org"]
    assert counts.already_sent == 1 and counts.to_send == 1


def test_invalid_lines_are_counted_in_physical_lines(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text('email,note\na@example.org,"two\nlines"\n\nbad@,x\n', encoding="utf-8")
    got = rows(path)
    assert isinstance(got[1], Invalid) and got[1].line == 5


def test_no_email_column_names_the_file_and_the_header(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("name,phone\nAnna,123\n", encoding="utf-8")
    with pytest.raises(SubscriberError, match=r"s\.csv, line 1: no email column in the header row \(name, phone\)"):
        rows(path)


def test_missing_list_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SubscriberError, match="subscriber list not found"):
        rows(tmp_path / "nope.csv")


def test_suppression_list_with_or_without_header(tmp_path: Path) -> None:
    with_header = tmp_path / "a.csv"
    with_header.write_text("email,reason\nGone@Example.org,unsubscribed\nnot valid@x,bounced\n", encoding="utf-8")
    # An entry that is not a valid address is still honoured, with the spaces taken out.
    assert read_suppressed(with_header) == {"gone@example.org", "notvalid@x"}
    bare = tmp_path / "b.csv"
    bare.write_text("gone@example.org\nother@example.org\n", encoding="utf-8")
    assert read_suppressed(bare) == {"gone@example.org", "other@example.org"}
    assert read_suppressed(None) == set()


def test_a_missing_suppression_list_is_an_error_not_an_empty_list(tmp_path: Path) -> None:
    with pytest.raises(SubscriberError, match=r"absent\.csv: suppression list not found") as caught:
        read_suppressed(tmp_path / "absent.csv")
    assert caught.value.hint is not None and 'suppressed = ""' in caught.value.hint
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(SubscriberError, match=r"folder\.csv: the suppression list is a folder, not a file"):
        read_suppressed(tmp_path / "folder.csv")


def test_empty_file_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("", encoding="utf-8")
    assert rows(path) == []


def test_streaming_does_not_read_ahead(tmp_path: Path) -> None:
    # The generator hands out the first row before it has looked at the rest of a large file.
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("email\n")
        for i in range(5_000):
            fh.write(f"user{i}@example.org\n")
    stream = recipients(path, set(), set(), counts := ListCounts())
    first = next(stream)
    assert first.email == "user0@example.org"
    assert counts.rows == 1
    assert sum(1 for _ in stream) == 4_999


_ATOM = st.text(alphabet=string.ascii_letters + string.digits + "_+-", min_size=1, max_size=12)
_LABEL = st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,8}[A-Za-z0-9])?", fullmatch=True)
_TLD = st.sampled_from(["org", "ORG", "eu", "test", "local", "invalid", "co", "museum", "xn--p1ai", "Be", "onion",
                        "ARPA", "localhost", "home.arpa"])


@settings(max_examples=400, deadline=None)
@given(
    local=st.lists(_ATOM, min_size=1, max_size=3).map(".".join),
    labels=st.lists(_LABEL, min_size=1, max_size=3),
    tld=_TLD,
)
def test_the_fast_path_agrees_with_email_validator(local: str, labels: list[str], tld: str) -> None:
    from email_validator import EmailNotValidError, validate_email

    address = f"{local}@{'.'.join(labels)}.{tld}"
    try:
        expected: str | None = validate_email(address, check_deliverability=False).ascii_email
    except EmailNotValidError:
        expected = None
    assert check_address(address)[0] == expected


def test_the_special_use_domains_are_email_validators() -> None:
    from email_validator import SPECIAL_USE_DOMAIN_NAMES

    from cepletter.message.subscribers import SPECIAL_USE_DOMAINS

    assert set(SPECIAL_USE_DOMAIN_NAMES) == SPECIAL_USE_DOMAINS


def test_a_plain_list_is_read_without_loading_the_full_address_check(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "subscribers.csv"
    path.write_text("email,name\n" + "".join(f"user{i}@example.org,User {i}\n" for i in range(50)), encoding="utf-8")
    code = (
        "import sys; from pathlib import Path; from cepletter.message.subscribers import ListCounts, recipients; "
        f"n = sum(1 for _ in recipients(Path({str(path)!r}), set(), set(), ListCounts())); "
        "print(n, 'email_validator' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["50", "False"]


# ---------------------------------------------------------------- everything a spreadsheet writes

ROWS = [("jurgen@example.org", "Jürgen Müller"), ("marie@example.org", "Marie-Hélène Dubois"),
        ("zoe@example.org", "Zoë Ñúñez")]


@pytest.mark.parametrize(("codec", "bom"), [("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE),
                                            ("utf-32-le", codecs.BOM_UTF32_LE), ("utf-8", codecs.BOM_UTF8),
                                            ("utf-16-le", b""), ("utf-16-be", b"")])
def test_unicode_text_with_or_without_a_byte_order_mark(tmp_path: Path, codec: str, bom: bytes) -> None:
    path = tmp_path / "s.csv"
    text = "Email\tName\r\n" + "".join(f"{a}\t{n}\r\n" for a, n in ROWS)
    path.write_bytes(bom + text.encode(codec))
    got = rows(path)
    assert [(r.email, r.name, r.line) for r in got if isinstance(r, Recipient)] == [
        (a, n, i) for i, (a, n) in enumerate(ROWS, start=2)]


def test_a_stray_windows_1252_byte_is_read_as_such_on_its_line_only(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    # One line of a UTF-8 list holds "é" as the single byte 0xE9 and "–" as 0x96; one mixes both.
    path.write_bytes("email,name\njurgen@example.org,Jürgen\n".encode() + b"rene@example.org,Ren\xe9 \x96 Dupont\n"
                     + "mixed@example.org,Zoë ".encode() + b"Ren\xe9e\n" + "zoe@example.org,Zoë\n".encode())
    assert detect_encoding(path) == "utf-8"
    source = SubscriberFile(path)
    names = [r.name for r in source.rows() if isinstance(r, Recipient)]
    assert names == ["Jürgen", "René – Dupont", "Zoë Renée", "Zoë"]
    assert source.recoded == [3, 4]


def test_a_windows_1252_file_is_not_reported_as_recoded(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes("email;name\nmarie@example.org;Hélène\nzoe@example.org;Zoë\n".encode("cp1252"))
    source = SubscriberFile(path)
    assert [r.name for r in source.rows() if isinstance(r, Recipient)] == ["Hélène", "Zoë"]
    assert source.recoded == []
    counts = ListCounts()
    list(recipients(path, set(), set(), counts))
    assert counts.recoded == []


def test_a_broken_utf16_file_is_refused_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes(codecs.BOM_UTF16_LE + "email\r\na@example.org\r\nb@example.org\r\n".encode("utf-16-le")
                     + b"\x00\xdc" + "c@example.org\r\n".encode("utf-16-le"))
    with pytest.raises(SubscriberError, match=r"s\.csv, line 4: not valid UTF-16 text"):
        rows(path)


@pytest.mark.parametrize("end", ["\r\n", "\n", "\r"])
def test_line_ends_of_every_kind_and_quoted_fields_across_lines(tmp_path: Path, end: str) -> None:
    path = tmp_path / "s.csv"
    text = end.join(['email;name;note', 'a@example.org;"Jansen; Anna";"line one', 'line two"',
                     'b@example.org;Eva;"say ""hi"""', "c@example.org;Luca;", ""])
    path.write_bytes(text.encode())
    got = [(r.email, r.name, r.line) for r in rows(path) if isinstance(r, Recipient)]
    assert got == [("a@example.org", "Jansen; Anna", 2), ("b@example.org", "Eva", 4), ("c@example.org", "Luca", 5)]


@pytest.mark.parametrize(("cell", "address", "name"), [
    ("anna@example.org", "anna@example.org", ""),
    ("  ANNA@Example.ORG\t", "ANNA@example.org", ""),
    ("Anna Jansen <anna@example.org>", "anna@example.org", "Anna Jansen"),
    ('"Jansen, Anna" <anna@example.org>', "anna@example.org", "Jansen, Anna"),
    ("<  anna@example.org  >", "anna@example.org", ""),
    ("mailto:anna@example.org", "anna@example.org", ""),
    ("MailTo: anna@example.org?subject=Unsubscribe", "anna@example.org", ""),
    ("mailto:anna%40example.org", "anna@example.org", ""),
    ("Anna <MAILTO:anna@example.org>", "anna@example.org", "Anna"),
    ("\u200banna@example.org\u00a0", "anna@example.org", ""),
])
def test_address_forms(tmp_path: Path, cell: str, address: str, name: str) -> None:
    path = tmp_path / "s.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([["email"], [cell]])
    [row] = rows(path)
    assert isinstance(row, Recipient)
    assert (row.email, row.name) == (address, name)


@pytest.mark.parametrize(("header", "cells", "name"), [
    ("E-Mail-Adresse;Vorname;Nachname", "a@example.org;Jürgen;Müller", "Jürgen Müller"),
    ("E-Mail;Vorname;Name", "a@example.org;Jürgen;Müller", "Jürgen Müller"),  # "Name" beside "Vorname": surname
    ("Mailadresse;Vollständiger Name", "a@example.org;Jürgen Müller", "Jürgen Müller"),
    ("Adresse e-mail;Prénom;Nom", "a@example.org;Marie;Dubois", "Marie Dubois"),
    ("Courriel;Nom", "a@example.org;Dubois", "Dubois"),
    ("Adresse électronique;Nom complet", "a@example.org;Marie Dubois", "Marie Dubois"),
    ("E-mailadres;Voornaam;Tussenvoegsel;Achternaam", "a@example.org;Pieter;de;Vries", "Pieter de Vries"),
    ("E-mailadres;Naam", "a@example.org;Pieter de Vries", "Pieter de Vries"),
    ("Correo electrónico;Nombre;Apellidos", "a@example.org;José;Peña Ruiz", "José Peña Ruiz"),
    ("Dirección de correo electrónico;Nombre completo", "a@example.org;José Peña", "José Peña"),
    ("Indirizzo e-mail;Nome;Cognome", "a@example.org;Luca;Rossi", "Luca Rossi"),
    ("Posta elettronica;Nominativo", "a@example.org;Luca Rossi", "Luca Rossi"),
    ("Email Address;First Name;Last Name", "a@example.org;Anna;Jansen", "Anna Jansen"),
    ("E-mail 1 - Value;Name", "a@example.org;Anna Jansen", "Anna Jansen"),
])
def test_header_names_in_six_languages(tmp_path: Path, header: str, cells: str, name: str) -> None:
    path = tmp_path / "s.csv"
    path.write_text(f"{header}\n{cells}\n", encoding="utf-8")
    [row] = rows(path)
    assert isinstance(row, Recipient)
    assert (row.email, row.name) == ("a@example.org", name)


def test_comment_lines_only_in_the_suppression_list(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text('# who must never be mailed\nemail,note\n  # a note, "with a quote\ngone@example.org,"a\n#b"\n'
                    "#commented-out@example.org\n", encoding="utf-8")
    assert read_suppressed(path) == {"gone@example.org"}
    # The subscriber list has no comments: an address may start with "#", and nobody is skipped unseen.
    path.write_text("email\n#hash@example.org\n", encoding="utf-8")
    assert [r.email for r in rows(path) if isinstance(r, Recipient)] == ["#hash@example.org"]
