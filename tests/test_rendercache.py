"""The render cache: `send` after `preview` reuses the render, and any change to its inputs renders again."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from cepletter.config import load_settings
from cepletter.message.personal import render_personal
from cepletter.message.recipient import Recipient
from cepletter.render import rendercache
from cepletter.render.renderer import Timings, template_dirs
from tests.renderkit import make_issue, make_workspace

PEOPLE = [
    Recipient(email="zoe@example.org", name="Zoë <O'Brien> & \"Co\"", fields={"org": "A & B", "country": "nl é"}),
    Recipient(email="ivan@example.org", name="Иван {{ x }}", fields={"org": "", "country": "be"}),
    Recipient(email="none@example.org"),
]


def _reused(settings, issue):  # type: ignore[no-untyped-def]
    timings = Timings()
    return render_personal(settings, issue, timings, cache=True, reuse=True), timings.reused


def test_a_kept_render_gives_every_recipient_the_same_bytes(tmp_path: Path) -> None:
    settings = make_workspace(tmp_path)
    templates = tmp_path / "templates"
    templates.mkdir()
    # attribute, text and comment slots, so every kind of escaping is stored and read back
    (templates / "_header.html.j2").write_text(
        '<tr><td><p title="For {{ recipient.name }}">Hello {{ recipient.org | fallback("friend") }}</p>'
        '<img src="https://example.org/{{ recipient.country }}.png" alt="{{ recipient.name }}" width="10">'
        "<!-- {{ recipient.email }} --></td></tr>\n",
        encoding="utf-8",
    )
    settings = load_settings(tmp_path)
    issue = make_issue(settings, items=3)
    fresh = render_personal(settings, issue, cache=True)
    kept, cached = _reused(settings, issue)
    assert cached
    assert kept.html == fresh.html and kept.text == fresh.text
    for person in PEOPLE:
        assert kept.fill(person) == fresh.fill(person) == render_personal(settings, issue).fill(person)
    assert kept.web() == fresh.web()
    assert (kept.issue_id, kept.subject, kept.preheader) == (fresh.issue_id, fresh.subject, fresh.preheader)


def test_without_reuse_or_a_cache_nothing_is_taken_from_it(tmp_path: Path) -> None:
    settings = make_workspace(tmp_path)
    issue = make_issue(settings, items=2)
    render_personal(settings, issue, cache=True)
    timings = Timings()
    render_personal(settings, issue, timings, cache=True)  # preview: renders, and keeps the result
    assert not timings.reused
    assert len(list((settings.cache_dir / rendercache.FOLDER).glob("*.json"))) == 1


def test_any_change_to_an_input_renders_again(tmp_path: Path) -> None:
    settings = make_workspace(tmp_path)
    issue = make_issue(settings, items=2)
    render_personal(settings, issue, cache=True)
    assert _reused(settings, issue)[1]

    # the issue
    edited = dataclasses.replace(issue, title="Another title")
    rendered, cached = _reused(settings, edited)
    assert not cached and "Another title" in rendered.web()[0]

    # a template file, also one that overrides the theme
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "_footer.html.j2").write_text("<tr><td>Our own footer {{ unsubscribe_url }}</td></tr>\n",
                                               encoding="utf-8")
    rendered, cached = _reused(settings, issue)
    assert not cached and "Our own footer" in rendered.web()[0]
    assert _reused(settings, issue)[1]
    (templates / "_footer.html.j2").write_text("<tr><td>Changed footer {{ unsubscribe_url }}</td></tr>\n",
                                               encoding="utf-8")
    rendered, cached = _reused(settings, issue)
    assert not cached and "Changed footer" in rendered.web()[0]

    # the settings
    config = (tmp_path / "cepletter.toml").read_text(encoding="utf-8")
    (tmp_path / "cepletter.toml").write_text(config.replace('name = "CEP Newsletter"', 'name = "Renamed"'),
                                             encoding="utf-8")
    renamed = load_settings(tmp_path)
    rendered, cached = _reused(renamed, issue)
    assert not cached and "Renamed" in rendered.web()[1]


def test_the_key_covers_cepletters_own_code_and_the_libraries(tmp_path: Path) -> None:
    settings = make_workspace(tmp_path)
    issue = make_issue(settings, items=1)
    key = rendercache.key(settings, issue, template_dirs(settings))
    assert key == rendercache.key(settings, issue, template_dirs(settings))
    code = Path(rendercache.__file__)
    stat = code.stat()
    os.utime(code, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    try:
        assert rendercache.key(settings, issue, template_dirs(settings)) != key
    finally:
        os.utime(code, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert set(rendercache._LIBRARIES) >= {"jinja2", "markdown_it", "premailer", "lxml", "nh3"}


def test_a_damaged_entry_is_a_miss(tmp_path: Path) -> None:
    settings = make_workspace(tmp_path)
    issue = make_issue(settings, items=1)
    fresh = render_personal(settings, issue, cache=True)
    [entry] = (settings.cache_dir / rendercache.FOLDER).glob("*.json")
    for damage in ("", "{", '{"key": "other"}', entry.read_text(encoding="utf-8").replace('"parts"', '"partz"')):
        entry.write_text(damage, encoding="utf-8")
        rendered, cached = _reused(settings, issue)
        assert not cached
        assert rendered.web() == fresh.web()


def test_send_after_preview_does_not_load_the_renderer(tmp_path: Path) -> None:
    settings = make_workspace(tmp_path / "ws", subscribers="email,name\nann@example.org,Ann\n")
    make_issue(settings, items=2)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('LOADED', *sorted(m for m in ('jinja2', 'markdown_it', 'premailer') "
        "if m in sys.modules), file=sys.stderr))\n"
        "from cepletter.cli.main import main\n"
        "main()\n"
    )
    for command in (["preview"], ["send", "--dry-run"]):
        result = subprocess.run([sys.executable, "-c", code, "-C", str(settings.root), *command],
                                capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr
        loaded = result.stderr.strip().splitlines()[-1]
        if command == ["preview"]:
            assert "jinja2" in loaded
        else:
            assert loaded == "LOADED", result.stderr


def test_settings_a_render_does_not_read_keep_the_key(tmp_path: Path) -> None:
    settings = make_workspace(tmp_path / "ws", subscribers="email\nann@example.org\n")
    issue = make_issue(settings, items=2)
    before = render_personal(settings, issue, cache=True)
    config = (settings.root / "cepletter.toml").read_text(encoding="utf-8")
    config += (
        '\n[delivery]\ntransport = "smtp"\nrate = 99\nconnections = 3\n'
        '[smtp]\nhost = "127.0.0.1"\nport = 2525\nsecurity = "none"\n'
        '[fetch]\ntimeout = 7\n'
    )
    (settings.root / "cepletter.toml").write_text(config, encoding="utf-8")
    relay = load_settings(settings.root)
    assert relay.delivery != settings.delivery and relay.smtp != settings.smtp
    # the render really does not change with them ...
    assert render_personal(relay, issue).web() == render_personal(settings, issue).web()
    # ... so it is reused, also when the folder is named another way
    after, reused = _reused(load_settings(Path(os.path.relpath(settings.root))), issue)
    assert reused and after.web() == before.web()
