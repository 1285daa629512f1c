"""Languages: the email in each shipped language, editions from issue.<lang>.md, check, the archive, RTL.

The expected texts below are golden: the footer, the labels and a date of
each shipped catalogue, as a reader sees them. A change of a translation or of
CLDR's formats shows up here first.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest
from conftest import Invoke
from renderkit import CONFIG, make_issue, make_workspace

from cepletter import i18n
from cepletter.config import Settings, load_settings
from cepletter.errors import ConfigError, IssueError
from cepletter.issue.edition import editions, pick
from cepletter.issue.file import load
from cepletter.message.editions import edition_for
from cepletter.message.personal import render_editions, render_personal
from cepletter.message.recipient import Recipient
from cepletter.publish.archive import build_archive
from cepletter.render import rendercache
from cepletter.render.renderer import template_dirs

REPO = Path(__file__).resolve().parent.parent
NB = "\u00a0"
ANNA = Recipient("anna@example.org", "Anna Jansen")
UNSUBSCRIBE = "https://example.org/unsubscribe?email=anna@example.org&list=cep"

# language: (greeting, date line, read more, footer, unsubscribe, events heading, event line, badges)
GOLDEN = {
    "en": ("Dear Anna Jansen,", "CEP Newsletter · 18 December 2025", "Read more: ",
           "You receive this email because you subscribed to the CEP Newsletter.", "Unsubscribe: ",
           "UPCOMING EVENTS", "Tuesday, 10 March 2026, 09:30–17:00 · Lisbon, Portugal", ["FEB", "MAR"]),
    "fr": ("Bonjour Anna Jansen,", "CEP Newsletter · 18 décembre 2025", f"Lire la suite{NB}: ",
           f"Vous recevez ce courriel parce que vous êtes abonné(e) à «{NB}CEP Newsletter{NB}».",
           f"Se désabonner{NB}: ", "ÉVÉNEMENTS À VENIR", "mardi 10 mars 2026, 09:30 – 17:00 · Lisbon, Portugal",
           ["FÉVR", "MARS"]),
    "de": ("Guten Tag, Anna Jansen,", "CEP Newsletter · 18. Dezember 2025", "Weiterlesen: ",
           "Sie erhalten diese E-Mail, weil Sie CEP Newsletter abonniert haben.", "Abmelden: ",
           "KOMMENDE VERANSTALTUNGEN", "Dienstag, 10. März 2026, 09:30–17:00 Uhr · Lisbon, Portugal", ["FEB", "MÄR"]),
    "nl": ("Beste Anna Jansen,", "CEP Newsletter · 18 december 2025", "Lees meer: ",
           "U ontvangt deze e-mail omdat u zich hebt aangemeld voor CEP Newsletter.", "Afmelden: ",
           "KOMENDE EVENEMENTEN", "dinsdag 10 maart 2026, 09:30–17:00 · Lisbon, Portugal", ["FEB", "MRT"]),
    "es": ("Estimado/a Anna Jansen:", "CEP Newsletter · 18 de diciembre de 2025", "Leer más: ",
           "Recibe este correo electrónico porque está suscrito/a a CEP Newsletter.", "Darse de baja: ",
           "PRÓXIMOS EVENTOS", "martes, 10 de marzo de 2026, 9:30–17:00 · Lisbon, Portugal", ["FEB", "MAR"]),
    "it": ("Gentile Anna Jansen,", "CEP Newsletter · 18 dicembre 2025", "Continua a leggere: ",
           "Riceve questa e-mail perché è iscritto/a a CEP Newsletter.", "Annulla l’iscrizione: ",
           "PROSSIMI EVENTI", "martedì 10 marzo 2026, 09:30–17:00 · Lisbon, Portugal", ["FEB", "MAR"]),
    "pt": ("Caro(a) Anna Jansen,", "CEP Newsletter · 18 de dezembro de 2025", "Ler mais: ",
           "Recebe esta mensagem porque subscreveu CEP Newsletter.", "Cancelar a subscrição: ",
           "PRÓXIMOS EVENTOS", "terça-feira, 10 de março de 2026 09:30 – 17:00 · Lisbon, Portugal", ["FEV", "MAR"]),
}
# The fixed texts of the English theme: none may be left in another language's email.
ENGLISH = ("Dear ", "Read more", "Unsubscribe", "View in your browser", "You receive this email",
           "UPCOMING EVENTS", "Upcoming events", " issue of the ", "In this issue")


def _workspace(root: Path, language: str, extra: str = "") -> Settings:
    return make_workspace(root, CONFIG + f'language = "{language}"\n' + extra)


def test_the_shipped_languages_are_the_seven_with_catalogues() -> None:
    assert i18n.SHIPPED == ("en", "fr", "de", "nl", "es", "it", "pt")
    assert sorted(GOLDEN) == sorted(i18n.SHIPPED)
    for language in i18n.SHIPPED:
        assert i18n.catalogue_language(language) == language


@pytest.mark.parametrize("language", sorted(GOLDEN))
def test_each_language_renders_its_footer_labels_and_dates(tmp_path: Path, language: str) -> None:
    settings = _workspace(tmp_path / "ws", language)
    issue = make_issue(settings)
    rendered = render_personal(settings, issue)
    html, text = rendered.fill(ANNA)
    greeting, date_line, more, footer, unsubscribe, events, event, badges = GOLDEN[language]
    lines = text.splitlines()
    assert lines[2] == date_line
    assert greeting in lines
    assert f"{more}https://www.cep-probation.org/item-1/" in lines
    assert event in lines
    assert events in lines and "-" * len(events) in lines
    assert lines[-2:] == [footer, unsubscribe + UNSUBSCRIBE]
    assert f'<html lang="{language}" dir="ltr">' in html
    assert re.findall(r'class="event-month"[^>]*>([^<]*)<', html) == badges
    assert f'<p style="margin:0 0 10px 0">{footer}</p>' in html
    assert rendered.rendered.untranslated == ()  # every fixed text of the theme has its translation
    if language != "en":
        for english in ENGLISH:
            assert english not in text, english
            assert english not in html, english


def test_a_dutch_workspace_drafts_and_renders_a_fully_dutch_email(tmp_path: Path, run: Invoke) -> None:
    ws = tmp_path / "ws"
    assert run("init", str(ws)).exit_code == 0
    config = ws / "cepletter.toml"
    sample = config.read_text(encoding="utf-8")
    assert '\nlanguage = "en"\n' in sample  # the setting is there to change
    config.write_text(sample.replace('\nlanguage = "en"\n', '\nlanguage = "nl"\n'), encoding="utf-8")
    drafted = run("-C", str(ws), "draft", "--issue", "2026-12", "--date", "2026-12-01", "--all")
    assert drafted.exit_code == 0, drafted.stderr
    issue_md = ws / "issues" / "2026-12" / "issue.md"
    drafted_text = issue_md.read_text(encoding="utf-8")
    assert "title: Nieuwsbrief december 2026\n" in drafted_text
    assert "subject: CEP Newsletter – december 2026\n" in drafted_text
    assert "Welkom bij de editie van december 2026 van CEP Newsletter." in drafted_text

    # The placeholder intro, in Dutch, is still an error.
    checked = run("-C", str(ws), "check")
    assert checked.exit_code == 1
    assert "Vervang deze regels door een korte inleiding" in checked.stdout
    issue_md.write_text(drafted_text.split("\n---\n", 1)[0] + "\n---\n\nBeste lezers, dit is de decembereditie.\n",
                        encoding="utf-8")

    preview = run("-C", str(ws), "preview", "--text")
    assert preview.exit_code == 0, preview.stderr
    text = preview.stdout
    lines = text.splitlines()
    assert lines[0] == "Nieuwsbrief december 2026"
    assert lines[2] == "CEP Newsletter · 1 december 2026"
    assert lines[3] == "Bekijken in uw browser: https://example.org/newsletter/2026-12/"
    assert "Beste Anna Jansen," in lines
    assert "Lees meer: https://www.cep-probation.org/newsletter-december-2025-out-now/" in lines
    assert "18 december 2025" in lines  # an item's date
    assert "U ontvangt deze e-mail omdat u zich hebt aangemeld voor CEP Newsletter." in lines
    assert lines[-1].startswith("Afmelden: https://example.org/unsubscribe?token=")
    assert "Preheader  In deze editie: " in preview.stderr
    html = (ws / "issues" / "2026-12" / "build" / "newsletter.html").read_text(encoding="utf-8")
    assert '<html lang="nl" dir="ltr">' in html
    assert "Nieuwsbrief december 2026" in html and "Lees meer" in html and "Afmelden" in html
    for english in ENGLISH:
        assert english not in text, english
        assert english not in html, english


def test_a_missing_translation_falls_back_to_english_and_check_names_it(tmp_path: Path, run: Invoke) -> None:
    settings = _workspace(tmp_path / "ws", "fr", 'unsubscribe_mailto = "unsubscribe@example.org"\n')
    (settings.root / "subscribers.csv").write_text("email,name\nanna@example.org,Anna Jansen\n", encoding="utf-8")
    (settings.root / "suppressed.csv").write_text("email\n", encoding="utf-8")
    templates = settings.root / "templates"
    templates.mkdir()
    theme = REPO / "templates" / "_footer.html.j2"
    (templates / "_footer.html.j2").write_text(
        theme.read_text(encoding="utf-8").replace(
            '<p class="footer-name">', '<p class="footer-note">{{ _("Printed on recycled electrons") }}</p>\n'
            '<p class="footer-name">'),
        encoding="utf-8")
    make_issue(settings, items=2, events=False)
    rendered = render_personal(settings, load(settings.issues_dir / "2025-12" / "issue.md"))
    html, _ = rendered.web()
    assert "Printed on recycled electrons" in html and "Lire la suite" in html
    assert rendered.rendered.untranslated == ("Printed on recycled electrons",)
    result = run("-C", str(settings.root), "check")
    assert "warning: fr: the template text “Printed on recycled electrons” has no French translation; " \
           "it is shown in English" in result.stdout
    strict = run("-C", str(settings.root), "check", "--strict")
    assert strict.exit_code == 1


def test_a_language_without_a_catalogue_keeps_english_texts_and_check_says_so(tmp_path: Path) -> None:
    settings = _workspace(tmp_path / "ws", "sv")
    issue = make_issue(settings, items=2, events=True)
    rendered = render_personal(settings, issue)
    _, text = rendered.fill(ANNA)
    assert "CEP Newsletter · 18 december 2025" in text  # Swedish dates from CLDR
    assert "Read more: https://www.cep-probation.org/item-1/" in text
    assert "Read more" in rendered.rendered.untranslated and "Unsubscribe: %(url)s" in rendered.rendered.untranslated
    from cepletter.review.preview import build_preview

    findings = [f for f in build_preview(settings, None, write=False).findings if f.code == "untranslated"]
    assert len(findings) == 1 and findings[0].level == "warning"
    assert findings[0].message.startswith("sv: cepletter has no catalogue for Swedish: the email's fixed texts (")


def test_a_language_code_cldr_does_not_know_is_an_error_naming_the_setting(tmp_path: Path, run: Invoke) -> None:
    with pytest.raises(ConfigError, match=r"\[newsletter\] language: 'not a code' is not a language code"):
        _workspace(tmp_path / "bad", "not a code")
    settings = _workspace(tmp_path / "ws", "qq")
    make_issue(settings, items=1, events=False)
    result = run("-C", str(settings.root), "preview")
    assert result.exit_code == 1
    assert re.search(r"cepletter.toml, line \d+: \[newsletter\] language: 'qq' is not a language cepletter knows",
                     result.stderr), result.stderr


# ---------------------------------------------------------------- the catalogues

def _catalogues_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("catalogues", REPO / "scripts" / "catalogues.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_catalogue_translates_every_text_and_its_mo_matches_its_po() -> None:
    script = _catalogues_script()
    assert script.problems() == []
    used = {str(message if isinstance(message, str) else message[0]) for _f, message, _c, _x in script.extracted()}
    assert {"Read more", "Unsubscribe", "Dear %(name)s,", "News", "All issues of %(name)s"} <= used
    for language in i18n.SHIPPED:
        assert (i18n.LOCALE_DIR / language / "LC_MESSAGES" / "cepletter.po").is_file()
        assert (i18n.LOCALE_DIR / language / "LC_MESSAGES" / "cepletter.mo").is_file()


def test_a_mo_file_out_of_step_with_its_po_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = _catalogues_script()
    copy = tmp_path / "locale"
    shutil.copytree(i18n.LOCALE_DIR, copy)
    po = copy / "nl" / "LC_MESSAGES" / "cepletter.po"
    po.write_text(po.read_text(encoding="utf-8").replace('msgstr "Lees meer"', 'msgstr "Meer lezen"'),
                  encoding="utf-8")
    monkeypatch.setattr(script, "LOCALE", copy)
    assert script.problems() == [
        f"{copy}/nl/LC_MESSAGES/cepletter.mo: does not match cepletter.po (run scripts/catalogues.py)"]


def test_the_render_cache_key_covers_the_catalogues(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _workspace(tmp_path / "ws", "fr")
    issue = make_issue(settings, items=1, events=False)
    copy = tmp_path / "locale"
    shutil.copytree(i18n.LOCALE_DIR, copy)
    monkeypatch.setattr(i18n, "LOCALE_DIR", copy)
    before = rendercache.key(settings, issue, template_dirs(settings))
    assert rendercache.key(settings, issue, template_dirs(settings)) == before
    mo = copy / "fr" / "LC_MESSAGES" / "cepletter.mo"
    mo.write_bytes(mo.read_bytes().replace(b"Lire la suite", b"Lire la suitE"))
    assert rendercache.key(settings, issue, template_dirs(settings)) != before


# ---------------------------------------------------------------- editions

TRANSLATION = """\
---
title: Lettre d'information de décembre 2025
subject: "Lettre d'information du CEP : décembre 2025"
sections:
  Section 1: Rubrique 1
items:
  "https://www.cep-probation.org/?p=1001":
    title: "Élément 1 : la probation en Europe"
    summary: <p>Les services de probation se sont réunis à Utrecht.</p>
  "https://www.cep-probation.org/?p=1002":
    title: "Élément 2 : la probation en Europe"
events:
  CEP Conference on Electronic Monitoring:
    title: Conférence du CEP sur la surveillance électronique
    location: Lisbonne, Portugal
---

Bienvenue dans le numéro de **décembre**.
"""


def _bilingual(root: Path, translation: str = TRANSLATION) -> tuple[Settings, Path]:
    settings = make_workspace(root, subscribers="email,name,language\nanna@example.org,Anna Jansen,fr\n")
    issue = make_issue(settings, items=3, preheader="")
    assert issue.path is None or issue.path.name == "issue.md"
    folder = settings.issues_dir / "2025-12"
    (folder / "issue.fr.md").write_text(translation, encoding="utf-8")
    return settings, folder


def test_an_edition_takes_the_translated_texts_and_keeps_the_rest(tmp_path: Path) -> None:
    settings, folder = _bilingual(tmp_path / "ws")
    issue = load(folder / "issue.md")
    found = editions(issue, settings.newsletter.language)
    assert [e.language for e in found] == ["en", "fr"]
    rendered = render_editions(settings, issue)
    assert [e.language for e in rendered.editions] == ["en", "fr"]
    french = rendered.edition("fr")
    assert french is not None
    html, text = french.fill(ANNA)
    assert french.subject == "Lettre d'information du CEP : décembre 2025"
    assert text.splitlines()[0] == "Lettre d'information de décembre 2025"
    assert "Bienvenue dans le numéro de décembre." in text
    assert "RUBRIQUE 1" in text and "SECTION 2" in text  # the second heading is not translated: English
    assert "Élément 1 : la probation en Europe" in text and "Les services de probation se sont réunis" in text
    assert "Item 3: probation practice in Europe" in text  # left out of the translation
    assert "Conférence du CEP sur la surveillance électronique" in text and "Lisbonne, Portugal" in text
    assert "https://www.cep-probation.org/item-1/" in text  # links, dates and order come from issue.md
    assert '<html lang="fr" dir="ltr">' in html and "Lire la suite" in html
    # The preheader issue.md leaves empty is made from the translated titles, in French.
    assert french.preheader.startswith(f"Dans ce numéro{NB}: Élément 1 : la probation en Europe; Élément 2")
    english = rendered.editions[0]
    assert english.subject == "CEP Newsletter December 2025"
    assert english.fill(ANNA)[1].splitlines()[0] == "Newsletter December 2025"


def test_check_names_every_untranslated_text_of_each_edition(tmp_path: Path, run: Invoke) -> None:
    settings, _folder = _bilingual(tmp_path / "ws")
    result = run("-C", str(settings.root), "check")
    assert result.exit_code == 0, result.stdout  # warnings only
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning: ")]
    shows = "is not translated; the fr edition shows the English text"
    summary = "Probation services across Europe met in Utrecht to compare…"
    item = "items[https://www.cep-probation.org/?p={}]"
    assert warnings == [
        f"warning: issue.fr.md: sections[Section 2] {shows} “Section 2”",
        f"warning: issue.fr.md: sections[Section 3] {shows} “Section 3”",
        f"warning: issue.fr.md: {item.format(1001)}.category {shows} “Reading corner”",
        f"warning: issue.fr.md: {item.format(1002)}.summary {shows} “{summary}”",
        f"warning: issue.fr.md: {item.format(1002)}.category {shows} “CEP Events”",
        f"warning: issue.fr.md: {item.format(1003)}.title {shows} “Item 3: probation practice in Europe, news and "
        "research fro…”",
        f"warning: issue.fr.md: {item.format(1003)}.summary {shows} “{summary}”",
        f"warning: issue.fr.md: {item.format(1003)}.category {shows} “Partners”",
        f"warning: issue.fr.md: events[Expert Group meeting].title {shows} “Expert Group meeting”",
    ]
    assert '    Translate it in issue.fr.md: items: "https://www.cep-probation.org/?p=1003": title: …' in result.stdout
    assert "2025-12 (en, fr): " in result.stderr
    assert run("-C", str(settings.root), "check", "--strict").exit_code == 1
    only_english = run("-C", str(settings.root), "check", "--lang", "en")
    assert "issue.fr.md" not in only_english.stdout


def test_preview_lang_builds_that_edition(tmp_path: Path, run: Invoke) -> None:
    settings, folder = _bilingual(tmp_path / "ws")
    result = run("-C", str(settings.root), "preview", "--lang", "FR", "--text")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "Lettre d'information de décembre 2025"
    assert "Issue 2025-12: Lettre d'information de décembre 2025  [fr edition]" in result.stderr
    assert "  Editions   en, fr (preview --lang LANG shows another)" in result.stderr
    built = folder / "build" / "newsletter.fr.html"
    assert built.is_file() and '<html lang="fr" dir="ltr">' in built.read_text(encoding="utf-8")
    assert (folder / "build" / "newsletter.fr.txt").read_text(encoding="utf-8") == result.stdout
    assert not (folder / "build" / "newsletter.html").exists()
    missing = run("-C", str(settings.root), "preview", "--lang", "de")
    assert missing.exit_code == 2
    assert "--lang de: issue 2025-12 has no de edition (it has: en, fr)" in missing.stderr


def test_a_translation_that_names_nothing_in_the_issue_is_an_error_with_its_line(tmp_path: Path) -> None:
    settings, folder = _bilingual(tmp_path / "ws", TRANSLATION.replace("?p=1002", "?p=9999"))
    with pytest.raises(IssueError, match=r"issue\.fr\.md, line 10: items\.https://www\.cep-probation\.org/\?p=9999: "
                                         r"issue\.md has no item with this id"):
        render_editions(settings, load(folder / "issue.md"))
    (folder / "issue.fr.md").write_text(TRANSLATION.replace('title: "Élément 1', 'titel: "Élément 1'), encoding="utf-8")
    with pytest.raises(IssueError, match=r"issue\.fr\.md, line 8: .*titel: unknown key"):
        render_editions(settings, load(folder / "issue.md"))
    (folder / "issue.en.md").write_text("---\ntitle: x\n---\n", encoding="utf-8")
    (folder / "issue.fr.md").unlink()
    with pytest.raises(IssueError, match=r"issue\.en\.md: en is the language of issue\.md itself"):
        render_editions(settings, load(folder / "issue.md"))


@pytest.mark.parametrize(("column", "edition"), [
    ("fr", "fr"), ("FR", "fr"), ("fr-BE", "fr"), ("fr_CA", "fr"), ("Français", "fr"), ("french", "fr"),
    ("en", "en"), ("", "en"), ("de", "en"), ("Deutsch", "en"), ("??", "en"),
])
def test_the_language_column_picks_the_edition(tmp_path: Path, column: str, edition: str) -> None:
    settings, folder = _bilingual(tmp_path / "ws")
    rendered = render_editions(settings, load(folder / "issue.md"))
    person = Recipient("anna@example.org", "Anna", {"email": "anna@example.org", "Language": column})
    assert edition_for(rendered, person).language == edition


def test_pick_prefers_the_exact_region_then_the_language() -> None:
    assert pick(["en", "pt", "pt-BR"], "pt-br") == "pt-BR"
    assert pick(["en", "pt", "pt-BR"], "pt-PT") == "pt"
    assert pick(["en", "nl-BE"], "nl") == "nl-BE"
    assert pick(["en", "fr"], None) is None


def test_the_archive_has_a_page_per_edition_linked_with_hreflang(tmp_path: Path) -> None:
    settings, _folder = _bilingual(tmp_path / "ws")
    result = build_archive(settings)
    english = (result.folder / "2025-12" / "index.html").read_text(encoding="utf-8")
    french = (result.folder / "2025-12" / "fr" / "index.html").read_text(encoding="utf-8")
    for page in (english, french):
        assert '<link rel="alternate" hreflang="en" href="https://example.org/newsletter/2025-12/">' in page
        assert '<link rel="alternate" hreflang="fr" href="https://example.org/newsletter/2025-12/fr/">' in page
        assert '<link rel="alternate" hreflang="x-default" href="https://example.org/newsletter/2025-12/">' in page
    assert '<html lang="fr" dir="ltr">' in french and "Lettre d'information de décembre 2025" in french
    assert '<a href="../../index.html"' in french and "Tous les numéros de «" in french
    assert '<a href="fr/index.html" hreflang="fr" lang="fr"' in english and ">Français</a>" in english
    assert '<a href="../index.html" hreflang="en" lang="en"' in french and ">English</a>" in french
    index = (result.folder / "index.html").read_text(encoding="utf-8")
    assert 'Also in: <a href="2025-12/fr/index.html" hreflang="fr" lang="fr">Français</a>' in index
    # The email's "view in your browser" leads each edition to its own page.
    assert "https://example.org/newsletter/2025-12/fr/" in render_editions(
        settings, load(settings.issues_dir / "2025-12" / "issue.md")).others[0].fill(ANNA)[1]


def test_an_arabic_edition_is_right_to_left(tmp_path: Path) -> None:
    settings, folder = _bilingual(tmp_path / "ws", "---\ntitle: النشرة الإخبارية\n---\n\nمرحبا بكم.\n")
    (folder / "issue.fr.md").rename(folder / "issue.ar.md")
    rendered = render_editions(settings, load(folder / "issue.md"))
    arabic = rendered.edition("ar")
    assert arabic is not None
    html, _ = arabic.fill(ANNA)
    assert '<html lang="ar" dir="rtl">' in html
    assert '<body class="body" dir="rtl"' in html
    assert html.count('dir="rtl"') >= 4  # the page, the body and both layout tables: clients that drop <html> keep it
    assert re.search(r'class="topbar sans" align="left"', html)
    assert re.search(r'<td class="event-body sans"[^>]*padding-right:16px', html)
    assert "&larr;" in html or "←" in html  # "Read more" points the way the text reads
    english, _ = rendered.fill(ANNA)
    assert 'dir="rtl"' not in english and "padding-right:16px" not in english


def test_a_two_language_issue_needs_each_edition_reviewed(tmp_path: Path, run: Invoke) -> None:
    settings, _folder = _bilingual(tmp_path / "ws")
    approved = run("-C", str(settings.root), "approve", "--lang", "fr", "--by", "Marie Dubois")
    assert approved.exit_code == 0, approved.stderr
    assert "Approved issue 2025-12 (fr edition) by Marie Dubois: \"Lettre d'information du CEP : décembre 2025\"" \
        in approved.stderr
    from cepletter.deliver.send import find_review, unreviewed_editions

    settings = load_settings(settings.root)
    rendered = render_editions(settings, load(settings.issues_dir / "2025-12" / "issue.md"))
    assert unreviewed_editions(settings, rendered) == ["en"]
    assert find_review(settings, rendered) is None
    assert run("-C", str(settings.root), "approve", "--by", "Anna Jansen").exit_code == 0
    assert unreviewed_editions(settings, rendered) == []
    found = find_review(settings, rendered)
    assert found is not None and found.description.startswith("en: approved by Anna Jansen")


def test_preview_serve_lang_serves_that_edition_and_follows_its_translation(tmp_path: Path) -> None:
    import os
    import time
    import urllib.request

    from cepletter.review.server import RELOAD_PATH, PreviewServer, preview_state

    settings, folder = _bilingual(tmp_path / "ws")
    state = preview_state(settings.root, "2025-12", "fr")
    state.refresh(force=True)
    server = PreviewServer(state, port=0, interval=0.1).start()

    def get(path: str) -> str:
        with urllib.request.urlopen(server.url + path, timeout=10) as response:
            return str(response.read().decode("utf-8"))

    try:
        page = get("")
        assert '<html lang="fr" dir="ltr">' in page and "Lettre d'information de décembre 2025" in page
        assert get("newsletter.txt").splitlines()[0] == "Lettre d'information de décembre 2025"
        version = get(RELOAD_PATH.lstrip("/"))
        translation = folder / "issue.fr.md"
        before = translation.stat().st_mtime
        translation.write_text(TRANSLATION.replace("Lettre d'information de décembre", "Numéro spécial d'hiver"),
                               encoding="utf-8")
        if translation.stat().st_mtime == before:  # a coarse clock: make the change visible
            os.utime(translation, (before + 1, before + 1))
        deadline = time.monotonic() + 30
        while get(RELOAD_PATH.lstrip("/")) == version and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "Numéro spécial d'hiver 2025" in get("")
    finally:
        server.close()
