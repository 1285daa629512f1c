"""Rendering: personalisation after inlining, the theme's structure, CSS, size, text, errors."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from lxml import html as lxml_html
from renderkit import make_issue, make_item, make_workspace

from cepletter.config import Settings
from cepletter.errors import TemplateError
from cepletter.issue.file import Section
from cepletter.message.personal import base_values, generic_unsubscribe_url, render_personal
from cepletter.message.recipient import Recipient
from cepletter.render.renderer import Timings, packaged_templates_dir, render_full
from cepletter.review.checks import check_placeholders

NAMES = [
    "Anna Jansen",
    "Ann <b>bold</b> & Co",
    "Tom & Jerry's \"Pub\"",
    "O'Brien",
    'The "quoted" one',
    "{{ recipient.email }} {% if x %}",
    "Jürgen Müller-Łukasiewicz",
    "Σωκράτης Παπαδόπουλος",
    "Дмитрий Иванов",
    "山田 太郎",
    "محمد علي",
    "tab\there\r\nand\x01control",
    "",
    "  spaced  ",
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_workspace(tmp_path / "ws")


def recipient(name: str, email: str = "someone@example.org", **fields: str) -> Recipient:
    return Recipient(email=email, name=name, fields={"email": email, "name": name, **fields})


# ---------------------------------------------------------------- personalisation

@pytest.mark.parametrize("name", NAMES)
def test_fill_is_byte_for_byte_a_full_render(settings: Settings, name: str) -> None:
    issue = make_issue(settings)
    rendered = render_personal(settings, issue)
    person = recipient(name, email="o'neil+news@example.org")
    html, text = rendered.fill(person)
    full_html, full_text = render_full(settings, issue, base_values(settings, person))
    assert html == full_html
    assert text == full_text
    greeting = f"Dear {name}," if name else "Dear reader,"
    assert greeting in text


def test_values_land_escaped_in_text_and_url_in_link(settings: Settings) -> None:
    rendered = render_personal(settings, make_issue(settings))
    html, text = rendered.fill(recipient("Ann <b>x</b> & Co", email="ann@example.org"))
    assert "Dear Ann &lt;b&gt;x&lt;/b&gt; &amp; Co," in html
    assert "<b>x</b>" not in html
    assert 'href="https://example.org/unsubscribe?email=ann@example.org&amp;list=cep"' in html
    assert "Unsubscribe: https://example.org/unsubscribe?email=ann@example.org&list=cep" in text


def test_slots_cover_every_recipient_value(settings: Settings) -> None:
    rendered = render_personal(settings, make_issue(settings))
    assert rendered.html.keys == {"recipient.name|greeting:12:Dear {name},|fallback:Dear reader,", "unsubscribe_url"}
    assert rendered.text.keys == rendered.html.keys
    # the static parts carry no trace of a placeholder
    assert not any("cepslot" in part for part in rendered.html.parts + rendered.text.parts)


def test_web_version_has_no_personal_data(settings: Settings) -> None:
    rendered = render_personal(settings, make_issue(settings))
    html, text = rendered.web()
    assert "Dear reader," in html and "Dear reader," in text
    assert 'href="https://example.org/unsubscribe?list=cep"' in html
    assert "{email}" not in html and "@example.org" not in html
    assert "Unsubscribe: https://example.org/unsubscribe?list=cep" in text


@pytest.mark.parametrize(("template", "generic"), [
    ("https://example.org/unsubscribe?email={email}", "https://example.org/unsubscribe"),
    ("https://example.org/u/{token}/", "https://example.org/u/"),
    ("https://example.org/unsubscribe", "https://example.org/unsubscribe"),
])
def test_generic_unsubscribe_url(tmp_path: Path, template: str, generic: str) -> None:
    config = (
        '[newsletter]\nname = "N"\nfrom = "n@example.org"\n'
        f'unsubscribe_url = "{template}"\n'
    )
    assert generic_unsubscribe_url(make_workspace(tmp_path, config)) == generic


def test_subscriber_columns_and_attribute_slots(tmp_path: Path) -> None:
    """A workspace template may put any column anywhere, attributes included."""
    settings = make_workspace(tmp_path)
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "_header.html.j2").write_text(
        '<tr><td><p title="For {{ recipient.name }}">Hello {{ recipient.organisation }}</p>'
        '<a href="mailto:{{ recipient.email }}" class="x">me</a>'
        '<img src="https://example.org/{{ recipient.country }}.png" alt="{{ recipient.name }}" width="10">'
        "</td></tr>\n",
        encoding="utf-8",
    )
    issue = make_issue(settings)
    rendered = render_personal(settings, issue)
    assert {"recipient.organisation", "recipient.country", "recipient.email"} <= rendered.html.keys
    for name in ('Say "hi"', "it's", "both ' and \"", "ü & <x>", "plain"):
        person = recipient(name, email="x.y@example.org", organisation=f"{name} Ltd", country="nl é")
        html, text = rendered.fill(person)
        assert (html, text) == render_full(settings, issue, base_values(settings, person))
    html, _ = rendered.fill(recipient('Say "hi"', organisation="O", country="be"))
    assert "title='For Say \"hi\"'" in html
    assert 'src="https://example.org/be.png"' in html


# ---------------------------------------------------------------- structure and CSS

def test_html_structure_is_accessible(settings: Settings) -> None:
    html, _ = render_personal(settings, make_issue(settings)).web()
    root = lxml_html.document_fromstring(html)
    assert root.get("lang") == "en"
    assert root.xpath("//meta[@name='color-scheme']/@content") == ["light dark"]
    assert root.xpath("//meta[@name='supported-color-schemes']")
    assert root.findtext(".//title") == "CEP Newsletter December 2025"
    for table in root.iter("table"):
        assert table.get("role") == "presentation"
    levels = [int(h.tag[1]) for h in root.iter("h1", "h2", "h3", "h4", "h5", "h6")]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels))
    for img in root.iter("img"):
        assert img.get("alt") and img.get("width")
    preheader = root.xpath("//div[contains(@class, 'preheader')]")[0]
    assert "display:none" in preheader.get("style").replace(" ", "")
    assert preheader.text_content().startswith("Mental health in probation")


def test_view_in_browser_and_footer(settings: Settings) -> None:
    html, text = render_personal(settings, make_issue(settings)).web()
    root = lxml_html.document_fromstring(html)
    links = {a.text_content().strip(): a.get("href") for a in root.iter("a")}
    assert links["View in your browser"] == "https://example.org/newsletter/2025-12/"
    assert links["Unsubscribe"] == "https://example.org/unsubscribe?list=cep"
    assert "3503 RE Utrecht" in root.text_content()
    assert "View in your browser: https://example.org/newsletter/2025-12/" in text


def _style_rules(css: str) -> list[tuple[str, list[str]]]:
    """(selector, property names) of every plain rule outside @media."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    depth = 0
    plain = []
    for match in re.finditer(r"([^{}]+)\{([^{}]*)\}|@[^{]+\{|\}", css):
        token = match.group(0)
        if token.startswith("@"):
            depth += 1
        elif token == "}":
            depth -= 1
        elif depth == 0:
            props = [d.split(":")[0].strip() for d in match.group(2).split(";") if ":" in d]
            plain.append((match.group(1).strip(), props))
    return plain


def test_every_inlinable_rule_is_inlined(settings: Settings) -> None:
    from lxml.cssselect import CSSSelector

    html, _ = render_personal(settings, make_issue(settings)).web()
    root = lxml_html.document_fromstring(html)
    css = (packaged_templates_dir() / "style.css").read_text(encoding="utf-8")
    rules = _style_rules(css)
    assert len(rules) > 30
    checked = 0
    for selectors, props in rules:
        for selector in selectors.split(","):
            selector = selector.strip()
            if ":" in selector:
                continue  # pseudo-classes (:root) cannot be inlined
            for element in CSSSelector(selector)(root):
                style = element.get("style", "")
                names = {d.split(":")[0].strip() for d in style.split(";") if ":" in d}
                for prop in props:
                    assert prop in names, f"{selector} {{{prop}}} not inlined on <{element.tag}>"
                    checked += 1
    assert checked > 200


def test_media_rules_stay_in_a_style_block(settings: Settings) -> None:
    html, _ = render_personal(settings, make_issue(settings)).web()
    root = lxml_html.document_fromstring(html)
    styles = root.xpath("//style")
    assert len(styles) == 2  # dark mode apart, so a client rejecting it keeps the rest
    block = styles[0].text + styles[1].text
    assert "prefers-color-scheme" not in styles[0].text
    assert "@media screen and (max-width: 599px)" in block
    assert "@media (prefers-color-scheme: dark)" in block
    assert ":root {color-scheme:light dark" in block
    # rules that were inlined are gone from the block
    assert ".card-body {" not in block.split("@media")[0]
    # media rules must beat the inline styles
    assert re.search(r"\.container|\.title \{\s*font-size: 26px !important", block)


def test_no_unsafe_css_or_markup(settings: Settings) -> None:
    html, _ = render_personal(settings, make_issue(settings)).web()
    lowered = html.lower()
    for banned in ("display:flex", "display: flex", "display:grid", "position:", "var(--", "<svg",
                   "background-image", "<script", "javascript:"):
        assert banned not in lowered, banned


def test_no_placeholder_left_and_parses(settings: Settings) -> None:
    rendered = render_personal(settings, make_issue(settings))
    html, text = rendered.fill(recipient("{{ x }}"))
    css_free = re.sub(r"<style.*?</style>", "", html, flags=re.S)
    assert check_placeholders(css_free.replace("{{ x }}", ""), "html") == []
    assert check_placeholders(text.replace("{{ x }}", ""), "text") == []
    assert lxml_html.document_fromstring(html).find(".//body") is not None


def test_twelve_items_stay_under_gmail_clipping(settings: Settings) -> None:
    long_summary = "<p>" + " ".join(["Probation work across Europe, explained in detail."] * 14) + "</p>"
    items = [make_item(n, summary=long_summary) for n in range(1, 13)]
    sections = [Section("Mental Health", items[:4]), Section("CEP Events", items[4:8]),
                Section("Publications", items[8:])]
    issue = make_issue(settings, sections=sections)
    html, _ = render_personal(settings, issue).fill(recipient("Anna Jansen"))
    size = len(html.encode("utf-8"))
    assert size < 102 * 1024, size
    assert html.count('class="card"') == 12


def test_no_tracking_pixels(settings: Settings) -> None:
    issue = make_issue(settings)
    html, _ = render_personal(settings, issue).web()
    sources = lxml_html.document_fromstring(html).xpath("//img/@src")
    assert sorted(sources) == sorted(i.image for i in issue.items if i.image)


def test_utm_off_by_default_and_never_on_unsubscribe(tmp_path: Path) -> None:
    plain = make_workspace(tmp_path / "plain")
    html, text = render_personal(plain, make_issue(plain)).web()
    assert "utm_" not in html and "utm_" not in text

    tracked = make_workspace(tmp_path / "utm", CONFIG_UTM)
    html, text = render_personal(tracked, make_issue(tracked)).fill(recipient("A"))
    root = lxml_html.document_fromstring(html)
    item_links = [a.get("href") for a in root.iter("a") if "/item-1/" in a.get("href", "")]
    assert item_links
    assert all("utm_source=newsletter&utm_medium=email&utm_campaign=cep-2025-12" in h for h in item_links)
    unsubscribe = [a.get("href") for a in root.iter("a") if a.text_content() == "Unsubscribe"]
    assert unsubscribe == ["https://example.org/unsubscribe?email=someone@example.org&list=cep"]
    assert "Read more: https://www.cep-probation.org/item-1/?utm_source=newsletter" in text
    assert "Unsubscribe: https://example.org/unsubscribe?email=someone@example.org&list=cep\n" in text


CONFIG_UTM = """\
[newsletter]
name = "CEP Newsletter"
from = "CEP <newsletter@example.org>"
unsubscribe_url = "https://example.org/unsubscribe?email={email}&list=cep"
[newsletter.utm]
campaign = "cep-{issue}"
"""


def test_untrusted_intro_and_summary_are_made_safe(settings: Settings) -> None:
    bad = make_item(1, summary='<p onclick="x()">Hi<script>alert(1)</script><img src="https://t.example/p.gif">'
                               '<a href="javascript:alert(2)">x</a><iframe src="https://e.example/"></iframe></p>')
    issue = make_issue(settings, sections=[Section("News", [bad])],
                       intro="<script>alert(3)</script> and [click](javascript:alert(4)) and <b>raw</b>")
    html, text = render_personal(settings, issue).web()
    lowered = html.lower()
    for banned in ("<script", "onclick", "<iframe", "t.example/p.gif"):
        assert banned not in lowered
    hrefs = lxml_html.document_fromstring(html).xpath("//@href")
    assert hrefs and not any(h.lower().startswith("javascript") for h in hrefs)
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in html  # shown as text, never run
    assert "alert(1)" not in text


# ---------------------------------------------------------------- text version

def test_text_version_is_written_for_reading(settings: Settings) -> None:
    issue = make_issue(settings)
    _, text = render_personal(settings, issue).fill(recipient("Anna Jansen"))
    lines = text.splitlines()
    assert lines[0] == "Newsletter December 2025"
    assert lines[1] == "=" * len(lines[0])
    for line in lines:
        assert len(line.encode("utf-8")) <= 900, line
    for item in issue.items:
        assert f"Read more: {item.link}" in text
    assert "SECTION 1" in text and "UPCOMING EVENTS" in text
    assert "Tuesday, 10 March 2026, 09:30–17:00 · Lisbon, Portugal" in text
    assert "3–4 February 2026 · Online" in text
    assert "full report <https://www.cep-probation.org/report/>" in " ".join(text.split())
    assert "<p>" not in text and "&amp;" not in text


# ---------------------------------------------------------------- templates: lookup and errors

def test_packaged_theme_is_found() -> None:
    folder = packaged_templates_dir()
    for name in ("base.html.j2", "newsletter.html.j2", "newsletter.txt.j2", "style.css", "dark.css"):
        assert (folder / name).is_file()


def test_workspace_template_overrides_the_theme_by_name(settings: Settings) -> None:
    templates = settings.root / "templates"
    templates.mkdir()
    (templates / "_footer.html.j2").write_text(
        '<tr><td>Our own footer <a href="{{ unsubscribe_url }}">Unsubscribe</a></td></tr>\n', encoding="utf-8")
    html, _ = render_personal(settings, make_issue(settings)).web()
    assert "Our own footer" in html
    assert "You receive this email because" not in html
    assert "Newsletter December 2025" in html  # the rest still comes from the theme


@pytest.mark.parametrize(("name", "source", "expected"), [
    ("newsletter.html.j2", "<html>\n<body>\n{% if %}\n</body></html>\n", r"newsletter\.html\.j2, line 3: "),
    ("newsletter.html.j2", "<html>\n<body>\n\n{{ no_such_thing }}\n</body></html>\n",
     r"newsletter\.html\.j2, line 4: 'no_such_thing' is undefined"),
    ("newsletter.html.j2", "<html><body>\n{% include 'missing.html.j2' %}\n</body></html>\n",
     r"template 'missing\.html\.j2' not found"),
    ("newsletter.html.j2", "<html><body>\n{% include 'newsletter.html.j2' %}\n</body></html>\n",
     r"newsletter\.html\.j2, line 2: templates include or call each other without end"),
    ("newsletter.html.j2", "<html><body>\n{% if recipient.name %}Hi{% endif %}\n</body></html>\n",
     r"newsletter\.html\.j2, line 2: recipient\.name is filled in per subscriber"),
    ("newsletter.html.j2", "<html><body>\n<p>{{ recipient.name | upper }}</p>\n</body></html>\n",
     r"newsletter\.html\.j2, line 2: recipient\.name is filled in per subscriber after rendering, so a template "
     r"cannot apply \.upper\(\)"),
    ("newsletter.txt.j2", "Hello\n{{ issue.nope }}\n", r"newsletter\.txt\.j2, line 2: .*nope"),
])
def test_template_errors_name_the_file_and_line(settings: Settings, name: str, source: str, expected: str) -> None:
    templates = settings.root / "templates"
    templates.mkdir()
    (templates / name).write_text(source, encoding="utf-8")
    with pytest.raises(TemplateError) as caught:
        render_personal(settings, make_issue(settings))
    assert re.search(expected, caught.value.message), caught.value.message
    assert caught.value.hint


def test_render_times_are_reported(settings: Settings) -> None:
    timings = Timings()
    render_personal(settings, make_issue(settings), timings)
    assert timings.jinja > 0 and timings.inline > 0 and timings.text > 0
    assert timings.total >= timings.inline


GREETINGS = """
greeting = "Beste {name},"
greeting_fallback = "Beste lezer,"
"""


@pytest.mark.parametrize(("config", "intro", "named", "nameless"), [
    # The theme's greeting, whatever the intro's first words: nothing is guessed.
    pytest.param("", "Dear colleagues,\n\nWelcome.", "Dear Anna Jansen,", "Dear reader,", id="default"),
    pytest.param("", "Beste collega's,\n\nWelkom.", "Dear Anna Jansen,", "Dear reader,", id="default-dutch-intro"),
    pytest.param(GREETINGS, "Welkom.", "Beste Anna Jansen,", "Beste lezer,", id="set"),
    pytest.param('greeting = "Hello all,"\n', "Welcome.", "Hello all,", "Hello all,", id="without-a-name"),
    pytest.param('greeting = ""\n', "Dear colleagues,\n\nWelcome.", None, None, id="none"),
])
def test_the_greeting_is_the_setting_never_a_guess(
        tmp_path: Path, config: str, intro: str, named: str | None, nameless: str | None) -> None:
    from renderkit import CONFIG

    settings = make_workspace(tmp_path / "ws", CONFIG.replace('timezone = "', config + 'timezone = "'))
    issue = make_issue(settings, intro=intro)
    rendered = render_personal(settings, issue)
    for person, line in ((recipient("Anna Jansen"), named), (recipient(""), nameless)):
        html, text = rendered.fill(person)
        assert (html, text) == render_full(settings, issue, base_values(settings, person))
        page = lxml_html.fromstring(html)
        greeting = [p.text_content() for p in page.xpath("//p[@class='greeting']")]
        assert greeting == ([line] if line else [])
        first = text.split("\n\n")[1]  # after the title block
        assert first == (line or intro.split("\n")[0])
    assert intro.split("\n")[0] in rendered.fill(recipient("Anna Jansen"))[1]


@pytest.mark.parametrize(("config", "message"), [
    ('greeting = "Dear {name},"\n', "[newsletter] greeting_fallback: missing; 'Dear {name},' needs a line for "
                                     "subscribers without a name"),
    ('greeting = "Dear {first},"\ngreeting_fallback = "Hi,"\n', "[newsletter] greeting: {first} cannot be filled in"),
    ('greeting = "Dear {name},"\ngreeting_fallback = "Dear {name},"\n',
     "[newsletter] greeting_fallback: {name} cannot be filled in here"),
    ('greeting = 3\n', "[newsletter] greeting: expected a string, got 3"),
])
def test_a_greeting_setting_that_cannot_work_is_named(tmp_path: Path, run, config: str, message: str) -> None:
    from renderkit import CONFIG

    root = tmp_path / "ws"
    root.mkdir()
    (root / "cepletter.toml").write_text(CONFIG.replace('timezone = "', config + 'timezone = "'), encoding="utf-8")
    result = run("-C", str(root), "check")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: cepletter.toml"), result.stderr
    assert message in result.stderr.splitlines()[0]


def test_preview_greets_each_subscriber_as_the_setting_says(tmp_path: Path, run) -> None:
    from renderkit import CONFIG

    settings = make_workspace(tmp_path, CONFIG.replace('timezone = "', GREETINGS + 'timezone = "'),
                              subscribers="email,name\nanna@example.org,Anna Jansen\n")
    make_issue(settings, intro="Beste collega's,\n\nWelkom.")
    result = run("-C", str(tmp_path), "preview", "--text")
    assert result.exit_code == 0, result.stderr
    assert "Beste Anna Jansen,\n\nBeste collega's," in result.stdout
    assert "Dear" not in result.stdout


def test_events_read_in_date_order_in_the_newsletter_time_zone(settings: Settings) -> None:
    issue = make_issue(settings)  # the March event is listed before the February one
    html, text = render_personal(settings, issue).web()
    assert text.index("Expert Group meeting") < text.index("CEP Conference on Electronic Monitoring")
    assert html.index("Expert Group meeting") < html.index("CEP Conference on Electronic Monitoring")
    assert "09:30–17:00" in text  # 08:30 UTC is 09:30 in Amsterdam


def test_category_is_not_repeated_under_its_own_heading(settings: Settings) -> None:
    item = make_item(1)  # category "Reading corner"
    issue = make_issue(settings, sections=[Section("Reading corner", [item]), Section("More", [make_item(2)])])
    html, text = render_personal(settings, issue).web()
    assert html.count('class="category"') == 1  # only under "More"
    assert "Reading corner · 10 December 2025" not in text
    assert "CEP Events · 10 December 2025" in text


def test_inliner_stays_quiet_and_offline(settings: Settings, capfd: pytest.CaptureFixture[str],
                                         caplog: pytest.LogCaptureFixture) -> None:
    """Odd CSS makes cssutils complain; none of it may reach the terminal, and nothing is fetched."""
    import http.server
    import threading

    requests: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.end_headers()
            self.wfile.write(b".title { color: red }")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    templates = settings.root / "templates"
    templates.mkdir()
    theme_css = (packaged_templates_dir() / "style.css").read_text(encoding="utf-8")
    (templates / "style.css").write_text(
        f"@import url(http://127.0.0.1:{port}/import.css);\n"
        ".title { colr: red; width: 10qq; font: ; }\n" + theme_css,
        encoding="utf-8",
    )
    (templates / "base.html.j2").write_text(
        (packaged_templates_dir() / "base.html.j2").read_text(encoding="utf-8").replace(
            "</head>", f'<link rel="stylesheet" href="http://127.0.0.1:{port}/link.css">\n</head>'),
        encoding="utf-8",
    )
    try:
        html, _ = render_personal(settings, make_issue(settings)).web()
    finally:
        server.shutdown()
        server.server_close()
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""
    assert not [r for r in caplog.records if r.levelno >= 30]
    assert requests == []
    assert "Newsletter December 2025" in html and "@import" not in html


@pytest.mark.parametrize("name", [*NAMES, "a\rb", "n\x00ul", "c\x7fd\x0ce", "a\u2028b", "\ufeffbom"])
def test_values_in_title_comment_and_script_match_a_full_render(tmp_path: Path, name: str) -> None:
    settings = make_workspace(tmp_path)
    templates = tmp_path / "templates"
    templates.mkdir()
    base = (packaged_templates_dir() / "base.html.j2").read_text(encoding="utf-8")
    base = base.replace("{% block title %}{{ issue.subject }}{% endblock %}",
                        "{% block title %}{{ issue.subject }} for {{ recipient.name }}{% endblock %}")
    base = base.replace("</head>", '<!-- for {{ recipient.name }} -->\n'
                                   '<script>var n = "{{ recipient.name }}";</script>\n</head>')
    (templates / "base.html.j2").write_text(base, encoding="utf-8")
    issue = make_issue(settings)
    rendered = render_personal(settings, issue)
    person = recipient(name)
    assert rendered.fill(person) == render_full(settings, issue, base_values(settings, person))


def test_fill_matches_a_full_render_for_any_text(tmp_path: Path) -> None:
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hyp_settings
    from hypothesis import strategies as st

    settings = make_workspace(tmp_path)
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "_header.html.j2").write_text(
        '<tr><td><p title="{{ recipient.name }}">Dear {{ recipient.name | fallback("reader") }}, '
        "{{ recipient.org }}</p></td></tr>\n",
        encoding="utf-8",
    )
    issue = make_issue(settings)
    rendered = render_personal(settings, issue)

    @hyp_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(name=st.text(max_size=30), org=st.text(max_size=20))
    def check(name: str, org: str) -> None:
        person = recipient(name, org=org)
        assert rendered.fill(person) == render_full(settings, issue, base_values(settings, person))

    check()


def test_text_paragraphs_stay_whole_and_lines_stay_within_smtp_limits() -> None:
    import textwrap

    from cepletter.render import filters as markup

    paragraph = " ".join(f"word{i}" for i in range(60))  # ~400 characters
    assert markup.wrap(paragraph) == paragraph
    assert markup.html_text(f"<p>{paragraph}</p><p>second   one</p>") == f"{paragraph}\n\nsecond one"
    long = " ".join(["Σωκράτης"] * 300)  # 16 octets a word: 4,800 octets
    lines = markup.wrap(long).split("\n")
    assert len(lines) > 5 and all(len(line.encode("utf-8")) <= markup.LINE_OCTETS for line in lines)
    assert " ".join(lines) == long
    url = "https://example.org/" + "x" * 1000
    assert markup.wrap(f"see {url} now") == f"see\n{url}\nnow"  # a URL is never cut
    assert markup.wrap(paragraph, 40) == "\n".join(textwrap.wrap(paragraph, 40))  # a template may still ask


# ---------------------------------------------------------------- per-recipient values taken apart

@pytest.mark.parametrize(("expression", "what"), [
    ("recipient.name[:1]", r"take part of \(`recipient\.name\[:\.\.\.\]`\)"),
    ("recipient.name[0]", r"take part of \(`recipient\.name\[0\]`\)"),
    ("recipient.name.split()[0]", r"apply \.split\(\)"),
    ("recipient.name | length", r"measure \(`\| length`\)"),
    ("recipient.name | lower", r"apply \.lower\(\)"),
    ("recipient.name | first", r"take apart"),
    ("recipient.email.endswith('.org')", r"apply \.endswith\(\)"),
    ("'@' in recipient.email", r"search \(`in`\)"),
    ("(recipient.name | fallback('reader'))[:1]", r'recipient\.name \| fallback\("reader"\) is filled in .* take part of'),
])
def test_taking_a_recipient_value_apart_is_refused_with_the_line(
        settings: Settings, expression: str, what: str) -> None:
    templates = settings.root / "templates"
    templates.mkdir()
    (templates / "newsletter.txt.j2").write_text(f"Hello\n\nHi {{{{ {expression} }}}},\n", encoding="utf-8")
    with pytest.raises(TemplateError) as caught:
        render_personal(settings, make_issue(settings))
    assert re.search(rf"newsletter\.txt\.j2, line 3: .*{what}", caught.value.message), caught.value.message
    assert caught.value.hint is not None
    if "length" not in expression and " in " not in expression:
        assert "{{ recipient.first_name }}" in caught.value.hint


def test_a_column_gives_each_recipient_the_part_of_the_name(settings: Settings) -> None:
    templates = settings.root / "templates"
    templates.mkdir()
    (templates / "newsletter.txt.j2").write_text(
        "Hi {{ recipient.first_name | fallback('there') }} ({{ recipient.name }}, {{ recipient.email }}).\n",
        encoding="utf-8")
    rendered = render_personal(settings, make_issue(settings))
    anna = recipient("Anna Jansen", "anna@example.org", first_name="Anna")
    eva = recipient("Eva Novák", "eva@example.org", first_name="")
    assert rendered.fill(anna)[1] == "Hi Anna (Anna Jansen, anna@example.org).\n"
    assert rendered.fill(eva)[1] == "Hi there (Eva Novák, eva@example.org).\n"


def test_preview_refuses_a_template_that_takes_the_name_apart(tmp_path: Path, run) -> None:
    settings = make_workspace(tmp_path, subscribers="email,name\nanna@example.org,Anna Jansen\n")
    make_issue(settings)
    (tmp_path / "templates").mkdir()
    header = (packaged_templates_dir() / "_header.html.j2").read_text(encoding="utf-8")
    lines = header.splitlines()
    at = next(n for n, line in enumerate(lines) if 'class="greeting"' in line)
    lines[at] = '<p class="greeting">Hi {{ recipient.name.split()[0] }},</p>'
    (tmp_path / "templates" / "_header.html.j2").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run("-C", str(tmp_path), "preview")
    assert result.exit_code == 1
    first, hint = result.stderr.splitlines()[:2]
    assert first == (f"Error: {tmp_path}/templates/_header.html.j2, line {at + 1}: recipient.name is filled in per "
                     "subscriber after rendering, so a template cannot apply .split() (directly, or through a "
                     "filter such as | upper) to it")
    assert "e.g. first_name" in hint and "{{ recipient.first_name }}" in hint
    assert not (tmp_path / "issues" / "2025-12" / "build").exists()
