"""The review of a multi-language issue: which edition to show, and what each leaves in another language.

`preview --lang fr`, `check` and the sign-off work per edition; this module
picks the edition asked for and turns what it lacks into findings:

- a text of issue.md its translation (issue.<lang>.md) leaves out, named by
  its key, so the translator can find it;
- a fixed text of the theme ("Read more", the footer) that cepletter's
  catalogue for the language lacks, or no catalogue at all.

Both are warnings: the edition still reads, with those texts in the other
language; `check --strict` makes them fail.
"""

from __future__ import annotations

from cepletter import i18n
from cepletter.config import Settings
from cepletter.errors import UsageError
from cepletter.issue.edition import Edition, editions
from cepletter.issue.file import Issue
from cepletter.render.rendered import RenderedIssue
from cepletter.review.checks import WARNING, Finding


def choose(settings: Settings, issue: Issue, language: str | None) -> Edition:
    """The edition of ``issue`` in ``language`` (None: issue.md's, in ``[newsletter] language``)."""
    found = editions(issue, settings.newsletter.language)
    if language is None:
        return found[0]
    wanted = i18n.normalise(language)
    for edition in found:
        if edition.language == wanted:
            return edition
    have = ", ".join(e.language for e in found)
    raise UsageError(
        f"--lang {language}: issue {issue.id} has no {wanted} edition (it has: {have})",
        f"Write the translation in issues/{issue.id}/issue.{wanted}.md, beside issue.md.",
    )


def label(edition: Edition) -> str:
    """How messages name an edition: "" for the main one, "fr edition: " for a translation."""
    return "" if edition.is_main else f"{edition.language} edition: "


def edition_findings(edition: Edition, rendered: RenderedIssue, main_language: str) -> list[Finding]:
    """What ``edition`` shows in another language than its own, as warnings."""
    findings: list[Finding] = []
    main_name = _name(main_language)
    for gap in edition.untranslated:
        findings.append(Finding(
            WARNING, "untranslated",
            f"{gap.path.name}: {gap.key} is not translated; the {edition.language} edition shows "
            f"the {main_name} text \u201c{gap.original}\u201d",
            f"Translate it in {gap.path.name}: {gap.yaml}",
        ))
    findings += fixed_text_findings(rendered, edition.language)
    return findings


def fixed_text_findings(rendered: RenderedIssue, language: str) -> list[Finding]:
    """The theme's fixed texts the language's catalogue lacks (they stayed in English)."""
    if not rendered.untranslated:
        return []
    name = _name(language)
    if i18n.catalogue_language(language) is None:
        shown = ", ".join(f"\u201c{text}\u201d" for text in rendered.untranslated[:3])
        return [Finding(
            WARNING, "untranslated",
            f"{language}: cepletter has no catalogue for {name}: the email's fixed texts ({shown}"
            f"{', …' if len(rendered.untranslated) > 3 else ''}) are in English",
            f"cepletter ships {', '.join(i18n.SHIPPED)}; for {language}, put templates with the texts written "
            "in it in the workspace's templates/ folder (README, \u201cLanguages and editions\u201d).",
        )]
    return [Finding(
        WARNING, "untranslated",
        f"{language}: the template text \u201c{text}\u201d has no {name} translation; it is shown in English",
        f"Write it in {name} in your template, or add it to cepletter's catalogue for {language} "
        f"(cepletter/locale/{i18n.catalogue_language(language)}/LC_MESSAGES/cepletter.po).",
    ) for text in rendered.untranslated]


def _name(language: str) -> str:
    try:
        return i18n.display_name(language, "en")
    except ValueError:
        return language
