"""cepletter.toml: typed settings and one-line errors naming file, key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from cepletter.config import find_workspace, load_settings
from cepletter.errors import ConfigError, WorkspaceError

GOOD = """\
[newsletter]
name = "CEP Newsletter"
from = "CEP <newsletter@example.org>"
web_url = "https://example.org/newsletter/"
unsubscribe_url = "https://example.org/unsubscribe?email={email}"

[[sources]]
name = "news"
path = "news.xml"

[delivery]
transport = "smtp"
rate = 20
connections = 3

[smtp]
host = "127.0.0.1"
port = 2525
security = "none"
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "cepletter.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_good_config_is_typed(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, GOOD))
    assert s.newsletter.name == "CEP Newsletter"
    assert s.newsletter.from_ == "CEP <newsletter@example.org>"
    assert s.sources[0].path == "news.xml" and s.sources[0].location == "news.xml"
    assert s.delivery.rate == 20 and s.delivery.connections == 3 and s.delivery.retries == 5
    assert s.smtp is not None and s.smtp.port == 2525 and s.smtp.security == "none"
    assert s.path("news.xml") == tmp_path / "news.xml"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('rate = 20', 'rate = "fast"'), "[delivery] rate: expected a number, got 'fast'"),
        (('connections = 3', 'connections = 2.5'), "[delivery] connections: expected a whole number"),
        (('port = 2525', 'port = true'), "[smtp] port: expected a whole number, got True"),
        (('security = "none"', 'security = "tls"'), "[smtp] security: 'tls' is not one of"),
        (('transport = "smtp"', 'transport = "smtp"\nspeed = 3'), "[delivery] speed: unknown key"),
        (('name = "CEP Newsletter"\n', ''), "[newsletter] name: missing required key"),
        (('path = "news.xml"', 'path = "news.xml"\nurl = "https://x.org/feed"'), "needs exactly one of url or path"),
        (('[smtp]', '[smtpp]'), "smtpp: unknown table or key"),
        (('rate = 20', 'rate = 0'), "[delivery] rate: must be more than 0"),
        (('rate = 20', 'suppressed = " "'), "[delivery] suppressed: ' ' has spaces around the file name"),
        (('rate = 20', 'subscribers = ""'), "[delivery] subscribers: is empty"),
    ],
)
def test_bad_values_name_file_key_and_line(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    message = str(info.value)
    assert message.startswith("cepletter.toml")
    assert expected in message
    assert info.value.hint


def test_the_suppression_list_is_off_only_when_explicitly_empty(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, GOOD)).suppressed_path == tmp_path / "suppressed.csv"
    named = load_settings(write(tmp_path, GOOD.replace("rate = 20", 'suppressed = "lists/never.csv"')))
    assert named.suppressed_path == tmp_path / "lists" / "never.csv"
    assert load_settings(write(tmp_path, GOOD.replace("rate = 20", 'suppressed = ""'))).suppressed_path is None


def test_line_number_is_given(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cepletter.toml, line 13: \[delivery\] rate"):
        load_settings(write(tmp_path, GOOD.replace("rate = 20", 'rate = "x"')))


def test_toml_syntax_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line 2"):
        load_settings(write(tmp_path, "[newsletter]\nname = \n"))


def test_unknown_timezone(tmp_path: Path) -> None:
    text = GOOD.replace('name = "CEP Newsletter"', 'name = "CEP"\ntimezone = "Mars/Olympus"')
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Olympus'"):
        load_settings(write(tmp_path, text))


def test_smtp_transport_needs_smtp_table(tmp_path: Path) -> None:
    text = GOOD[: GOOD.index("[smtp]")]
    with pytest.raises(ConfigError, match=r"\[smtp\]: missing"):
        load_settings(write(tmp_path, text))


def test_find_workspace_walks_up(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    deep = tmp_path / "issues" / "2025-12"
    deep.mkdir(parents=True)
    assert find_workspace(deep) == tmp_path.resolve()


def test_no_workspace(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match=r"no cepletter\.toml"):
        find_workspace(tmp_path)
