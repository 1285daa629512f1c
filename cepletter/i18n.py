"""Languages: the tag an email is written in, and the catalogues of the fixed texts.

The default theme, the web archive and the drafts cepletter writes ("Read
more", "Unsubscribe", "Newsletter December 2026") are written in English and
translated through gettext catalogues shipped inside the package
(``cepletter/locale/<lang>/LC_MESSAGES/cepletter.po`` and its compiled
``.mo``). A text a catalogue lacks stays English, and the `Catalogue` that was
asked for it remembers it, so `check` can say which.

Babel (CLDR data) knows every language's name, script direction and date
formats; it is imported only when one of those is asked for, never when this
module is imported.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import gettext as gettext_module

    from babel import Locale

DOMAIN = "cepletter"
SOURCE = "en"  # the language the fixed texts are written in
SHIPPED = ("en", "fr", "de", "nl", "es", "it", "pt")
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

# A language tag as cepletter.toml, a subscriber list or a file name write it:
# "fr", "nl-BE", "pt_BR", "sr-Latn". Case and "_" or "-" do not matter.
_TAG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")


def is_tag(text: str) -> bool:
    """Whether ``text`` has the shape of a language tag (whether Babel knows it is `known`)."""
    return bool(_TAG.match(text.strip()))


def normalise(tag: str) -> str:
    """``FR`` → ``fr``, ``pt_br`` → ``pt-BR``, ``sr_latn`` → ``sr-Latn``: one spelling per language."""
    parts = re.split(r"[-_]", tag.strip())
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 4 and part.isalpha():
            out.append(part.title())  # a script
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            out.append(part.upper())  # a region
        else:
            out.append(part.lower())
    return "-".join(out)


def primary(tag: str) -> str:
    """The language without region or script: ``nl-BE`` → ``nl``."""
    return normalise(tag).split("-")[0]


# ---------------------------------------------------------------- CLDR, through Babel

@functools.lru_cache(maxsize=64)
def locale(tag: str) -> Locale:
    """The Babel locale for ``tag``; ValueError when CLDR does not know the language.

    Plain ``en`` is English as written in Europe (CLDR ``en_150``): 18 December
    2025, 24-hour times. ``en-US`` or ``en-GB`` ask for those.
    """
    from babel import Locale, UnknownLocaleError

    name = normalise(tag)
    if name == "en":
        name = "en-150"
    try:
        return Locale.parse(name, sep="-")
    except (UnknownLocaleError, ValueError):
        pass
    try:
        found = Locale.parse(primary(name))
    except (UnknownLocaleError, ValueError):
        raise ValueError(f"{tag!r} is not a language cepletter knows (CLDR has no such language)") from None
    return found


def known(tag: str) -> bool:
    """Whether ``tag`` is a language tag CLDR knows."""
    if not is_tag(tag):
        return False
    try:
        locale(tag)
    except ValueError:
        return False
    return True


def is_rtl(tag: str) -> bool:
    """Whether the language is written right to left (Arabic, Hebrew, Persian, Urdu …)."""
    return bool(locale(tag).character_order == "right-to-left")


def direction(tag: str) -> str:
    """"rtl" or "ltr", as HTML's ``dir`` takes it."""
    return "rtl" if is_rtl(tag) else "ltr"


def display_name(tag: str, in_language: str | None = None) -> str:
    """The language's name, in itself (``Français``) or in ``in_language``; capitalised as a label.

    ``en`` is "English", not the name of the locale its dates come from ("English (Europe)").
    """
    from babel import Locale, UnknownLocaleError

    try:
        named = Locale.parse(normalise(tag), sep="-")
    except (UnknownLocaleError, ValueError):
        named = locale(tag)
    name = named.get_display_name(locale(in_language) if in_language else named) or normalise(tag)
    return name[:1].upper() + name[1:]


# ---------------------------------------------------------------- catalogues

def catalogue_language(tag: str) -> str | None:
    """The shipped catalogue that serves ``tag`` (``nl-BE`` → ``nl``); None when there is none.

    English, the source language, is always served.
    """
    name = normalise(tag)
    for candidate in (name, primary(name)):
        if candidate == SOURCE or (LOCALE_DIR / candidate / "LC_MESSAGES" / f"{DOMAIN}.mo").is_file():
            return candidate
    return None


@functools.lru_cache(maxsize=32)
def _translations(name: str) -> gettext_module.GNUTranslations | None:
    import gettext as gettext_module  # only when a text is translated: not at start-up

    path = LOCALE_DIR / name / "LC_MESSAGES" / f"{DOMAIN}.mo"
    try:
        with path.open("rb") as fh:
            return gettext_module.GNUTranslations(fh)
    except OSError:
        return None


def catalogue_files() -> list[Path]:
    """Every compiled catalogue shipped: what a render depends on besides the templates."""
    return sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.mo"))


class Catalogue:
    """The fixed texts in one language, remembering which ones it had to leave in English.

    Make one per render (`catalogue`): ``missing`` then lists what that render
    asked for and did not find, in the order asked.
    """

    def __init__(self, language: str) -> None:
        self.language = normalise(language)
        self.served_by = catalogue_language(self.language)  # None: no catalogue at all
        self._translations = (
            _translations(self.served_by) if self.served_by not in (None, SOURCE) else None
        )
        self.missing: list[str] = []

    @property
    def is_source(self) -> bool:
        return self.served_by == SOURCE

    def _lookup(self, key: Any) -> str | None:
        if self._translations is None:
            return None
        catalog: dict[Any, str] = getattr(self._translations, "_catalog", {})
        found = catalog.get(key)
        return found if found else None

    def _miss(self, message: str) -> None:
        if not self.is_source and message not in self.missing:
            self.missing.append(message)

    def gettext(self, message: str) -> str:
        found = self._lookup(message)
        if found is None:
            self._miss(message)
            return message
        return found

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        if self._translations is not None and self._lookup((singular, 0)) is not None:
            return self._translations.ngettext(singular, plural, n)
        self._miss(singular)
        return singular if n == 1 else plural

    def pgettext(self, context: str, message: str) -> str:
        found = self._lookup(f"{context}\x04{message}")
        if found is None:
            self._miss(message)
            return message
        return found

    def npgettext(self, context: str, singular: str, plural: str, n: int) -> str:
        if self._translations is not None and self._lookup((f"{context}\x04{singular}", 0)) is not None:
            return self._translations.npgettext(context, singular, plural, n)
        self._miss(singular)
        return singular if n == 1 else plural


def catalogue(language: str) -> Catalogue:
    """A fresh `Catalogue` for ``language``."""
    return Catalogue(language)


def gettext(language: str, message: str) -> str:
    """One fixed text in ``language`` (English when the catalogue lacks it)."""
    return Catalogue(language).gettext(message)
