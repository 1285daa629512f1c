"""Bring the message catalogues up to date: extract, merge, compile.

The fixed texts of the default theme (``templates/*.j2``) and of the code
(``cepletter/**/*.py``: the archive, the drafts) are extracted with Babel into
``cepletter/locale/cepletter.pot``; every shipped language's
``cepletter/locale/<lang>/LC_MESSAGES/cepletter.po`` gets the new texts
(untranslated) and loses the ones no longer used; each ``.po`` is compiled to
the ``.mo`` next to it, which is what cepletter reads. Both are committed, so
a plain ``pip install .`` and an editable install carry them as they are.

    python scripts/catalogues.py           # update the .pot, the .po files and the .mo files
    python scripts/catalogues.py --check   # exit 1 when anything is out of date (what the tests check)

Translate in the ``.po`` files, then run it again to compile.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "cepletter" / "locale"
DOMAIN = "cepletter"
LANGUAGES = ("en", "fr", "de", "nl", "es", "it", "pt")
SOURCE = "en"
# Jinja's i18n calls, and gettext on a cepletter.i18n.Catalogue in the code.
KEYWORDS: dict[str, Any] = {
    "_": None, "gettext": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2), "npgettext": ((1, "c"), 2, 3),
    "N_": None,
}
# gettext's plural rules: French says "0 article", the others "0 articles".
PLURALS = {"fr": (2, "(n > 1)")}
# A fixed date keeps the files the same from one run to the next.
STAMP = datetime(2026, 1, 1)


def extracted() -> Iterator[tuple[str, Any, str | None, list[str]]]:
    """(file, message, context, translator comments) for every fixed text in the theme and the code."""
    from babel.messages.extract import extract_from_dir

    jinja = {"extensions": "jinja2.ext.i18n", "trim_blocks": "true", "lstrip_blocks": "true", "newstyle_gettext": "true"}
    sources = [
        ("templates", [("**.j2", "jinja2.ext:babel_extract")], {"**.j2": jinja}),
        ("cepletter", [("**.py", "python")], {}),
    ]
    for folder, method_map, options in sources:
        for filename, _line, message, comments, context in extract_from_dir(
            ROOT / folder, method_map, options, keywords=KEYWORDS, comment_tags=("Translators:",),
        ):
            yield f"{folder}/{filename}", message, context, list(comments)


def template() -> Any:
    """The .pot catalogue: every fixed text, no translation."""
    from babel.messages.catalog import Catalog

    pot = Catalog(project="cepletter", version="", copyright_holder="cepletter", charset="utf-8",
                  creation_date=STAMP, revision_date=STAMP, fuzzy=False)
    for filename, message, context, comments in sorted(extracted(), key=lambda e: (e[0], str(e[1]))):
        pot.add(message, locations=[(filename, None)], auto_comments=comments, context=context)
    return pot


def _po_bytes(catalog: Any) -> bytes:
    from babel.messages.pofile import write_po

    out = io.BytesIO()
    write_po(out, catalog, width=100, no_location=True, omit_header=False, sort_output=True,
             include_previous=False)
    return out.getvalue()


def _mo_bytes(catalog: Any) -> bytes:
    from babel.messages.mofile import write_mo

    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def po_path(language: str) -> Path:
    return LOCALE / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def read(language: str) -> Any:
    """The language's .po catalogue as it is on disk."""
    from babel.messages.pofile import read_po

    with po_path(language).open("rb") as fh:
        return read_po(fh, locale=language, domain=DOMAIN)


def updated(language: str, pot: Any) -> Any:
    """The language's catalogue merged with ``pot``: new texts added, unused ones dropped."""
    from babel.messages.catalog import Catalog

    path = po_path(language)
    if path.is_file():
        catalog = read(language)
    else:
        catalog = Catalog(locale=language, domain=DOMAIN, project="cepletter", charset="utf-8",
                          creation_date=STAMP, revision_date=STAMP, fuzzy=False,
                          header_comment=f"# {language}: the fixed texts of cepletter's theme, archive and drafts.\n"
                                         "# Distributed under the same licence as cepletter (MIT).",
                          copyright_holder="cepletter", last_translator="cepletter", language_team="cepletter")
        # gettext's usual plural rule, not CLDR's (which adds a form for millions in some languages).
        catalog._num_plurals, catalog._plural_expr = PLURALS.get(language, (2, "(n != 1)"))
    catalog.update(pot, no_fuzzy_matching=True, update_creation_date=False)
    catalog.obsolete.clear()
    catalog.revision_date = STAMP
    catalog.creation_date = STAMP
    return catalog


def problems() -> list[str]:
    """What is out of date, compared by content (not bytes, which depend on Babel's version):

    a text the theme or the code uses that a .po lacks, or one it has that nothing uses;
    a text a shipped language leaves untranslated or fuzzy; a .mo that does not hold
    exactly its .po's translations.
    """
    import gettext

    found: list[str] = []
    used = {(context, message) for _f, message, context, _c in extracted()}
    for language in LANGUAGES:
        path = po_path(language)
        if not path.is_file():
            found.append(f"{_rel(path)}: missing")
            continue
        catalog = read(language)
        have = {(m.context, m.id) for m in catalog if m.id}
        for _context, message in sorted(used - have, key=str):
            found.append(f"{_rel(path)}: lacks {_shown(message)}")
        for _context, message in sorted(have - used, key=str):
            found.append(f"{_rel(path)}: has {_shown(message)}, which nothing uses")
        expected: dict[Any, str] = {}
        for m in catalog:
            if not m.id:
                continue
            strings = m.string if isinstance(m.string, (list, tuple)) else [m.string]
            if m.fuzzy or not all(strings):
                found.append(f"{_rel(path)}: {_shown(m.id)} is not translated"
                             + (" (fuzzy)" if m.fuzzy else ""))
                continue
            key = f"{m.context}\x04" if m.context else ""
            if isinstance(m.id, (list, tuple)):
                for index, string in enumerate(strings):
                    expected[(key + m.id[0], index)] = string
            else:
                expected[key + m.id] = strings[0]
        mo = path.with_suffix(".mo")
        try:
            with mo.open("rb") as fh:
                compiled = {k: v for k, v in gettext.GNUTranslations(fh)._catalog.items() if k != ""}
        except OSError:
            found.append(f"{_rel(mo)}: missing")
            continue
        if compiled != expected:
            found.append(f"{_rel(mo)}: does not match {path.name} (run scripts/catalogues.py)")
    return found


def _rel(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def _shown(message: Any) -> str:
    return repr(message[0] if isinstance(message, (list, tuple)) else message)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a catalogue is out of date")
    args = parser.parse_args(argv)
    if args.check:
        found = problems()
        for problem in found:
            print(problem, file=sys.stderr)
        return 1 if found else 0
    pot = template()
    wanted: dict[Path, bytes] = {LOCALE / f"{DOMAIN}.pot": _po_bytes(pot)}
    for language in LANGUAGES:
        catalog = updated(language, pot)
        if language == SOURCE:
            for message in catalog:  # the texts are written in English: each is its own translation
                if message.id and not any(message.string if isinstance(message.string, tuple) else [message.string]):
                    message.string = message.id
        wanted[po_path(language)] = _po_bytes(catalog)
        wanted[po_path(language).with_suffix(".mo")] = _mo_bytes(catalog)
    for path, data in wanted.items():
        if path.is_file() and path.read_bytes() == data:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote {_rel(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
