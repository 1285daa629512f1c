"""Which language edition each subscriber gets, and the messages of a multi-language issue.

A subscriber list may have a ``language`` column (also spelled ``Language``,
``lang``, ``langue``, ``Sprache``, ``taal``, ``idioma``, ``lingua``, ``língua``).
Its value picks the edition (``fr``, ``fr-BE``, ``Français``, ``French``); an
empty cell, or a language the issue has no edition in, gets the main edition,
the one in ``[newsletter] language``.
"""

from __future__ import annotations

from collections.abc import Iterable

from cepletter.config import Settings
from cepletter.issue.edition import pick
from cepletter.message.build import Built, MessageFactory
from cepletter.message.personal import PersonalIssue
from cepletter.message.recipient import Recipient
from cepletter.message.subscribers import header_key

# Normalised header names (see `header_key`) of the column that holds a subscriber's language.
LANGUAGE_HEADERS = frozenset({
    "language", "lang", "languagecode", "preferredlanguage",
    "langue", "sprache", "taal", "voorkeurstaal", "idioma", "lingua",
})


def language_column(recipient: Recipient) -> str:
    """What the subscriber's language column says ("" when the list has none)."""
    for column, value in recipient.fields.items():
        if header_key(column) in LANGUAGE_HEADERS:
            return value.strip()
    return ""


def edition_for(rendered: PersonalIssue, recipient: Recipient) -> PersonalIssue:
    """The edition of ``rendered`` that ``recipient`` reads."""
    if not rendered.others:
        return rendered
    chosen = pick([e.language for e in rendered.editions], language_column(recipient))
    return (rendered.edition(chosen) or rendered) if chosen is not None else rendered


def count_editions(rendered: PersonalIssue, recipients: Iterable[Recipient]) -> dict[str, int]:
    """How many of ``recipients`` get each edition, in edition order."""
    counts = {e.language: 0 for e in rendered.editions}
    for recipient in recipients:
        counts[edition_for(rendered, recipient).language] += 1
    return counts


class EditionFactory(MessageFactory):
    """Builds each recipient's message in the edition they read.

    Itself the factory of the main edition (its subject is the one the
    confirmation and the journal show), with one more per other edition.
    """

    def __init__(self, settings: Settings, rendered: PersonalIssue, *, subject_prefix: str = "",
                 crlf: bool = False) -> None:
        super().__init__(settings, rendered, subject_prefix=subject_prefix, crlf=crlf)
        self.issue = rendered
        self._others: dict[str, MessageFactory] = {
            edition.language: MessageFactory(settings, edition, subject_prefix=subject_prefix, crlf=crlf)
            for edition in rendered.others
        }

    @property
    def subjects(self) -> dict[str, str]:
        """Each edition's subject line, by language."""
        return {self.issue.language: self.subject} | {lang: f.subject for lang, f in self._others.items()}

    def factory_for(self, recipient: Recipient) -> MessageFactory:
        language = edition_for(self.issue, recipient).language
        return self._others.get(language, self)

    def build(self, recipient: Recipient, *, eight_bit: bool = True, utf8: bool = True) -> Built:
        factory = self.factory_for(recipient)
        if factory is self:
            return super().build(recipient, eight_bit=eight_bit, utf8=utf8)
        return factory.build(recipient, eight_bit=eight_bit, utf8=utf8)


def make_factory(settings: Settings, rendered: PersonalIssue, *, subject_prefix: str = "",
                 crlf: bool = False) -> MessageFactory:
    """The message factory for ``rendered``: one that picks each recipient's edition when it has several."""
    if rendered.others:
        return EditionFactory(settings, rendered, subject_prefix=subject_prefix, crlf=crlf)
    return MessageFactory(settings, rendered, subject_prefix=subject_prefix, crlf=crlf)
