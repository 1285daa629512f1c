"""What the templates see: the issue, the newsletter settings and helpers, as plain objects.

Per-recipient values (``recipient``, ``unsubscribe_url``) are added by the
renderer, as placeholder slots or as one subscriber's real values.
"""

from __future__ import annotations

from datetime import date, datetime
from datetime import time as dt_time
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from cepletter import i18n
from cepletter.config import Settings
from cepletter.issue.file import Issue
from cepletter.issue.preheader import of_issue as issue_preheader
from cepletter.render import filters as markup


def personal_unsubscribe(settings: Settings) -> bool:
    """Whether the unsubscribe link differs per recipient (has {email} or {token}).

    Then the template gets a slot for it; otherwise the link itself, which is
    part of the page everyone gets.
    """
    template = settings.newsletter.unsubscribe_url or ""
    return "{email}" in template or "{token}" in template


def static_unsubscribe_url(settings: Settings) -> str:
    """The unsubscribe link when it is the same for everyone ("" when none is configured)."""
    nl = settings.newsletter
    if nl.unsubscribe_url:
        return nl.unsubscribe_url
    if nl.unsubscribe_mailto:
        return f"mailto:{nl.unsubscribe_mailto}?subject=unsubscribe"
    return ""


def build_context(settings: Settings, issue: Issue, has_unsubscribe: bool, *,
                  web_page: bool = False) -> dict[str, Any]:
    """The template context for ``issue``, without the per-recipient values.

    ``web_page``: for the web archive's page of the issue, which nobody received:
    templates leave out what only an email says (the greeting, "view in your
    browser", why you get it, unsubscribing) and may show a Subscribe link.
    """
    from markupsafe import Markup

    nl = settings.newsletter
    tz = ZoneInfo(nl.timezone)
    language = edition_language(settings, issue)
    utm: dict[str, str] = {}
    if nl.utm is not None:
        utm = {
            "utm_source": nl.utm.source.replace("{issue}", issue.id),
            "utm_medium": nl.utm.medium.replace("{issue}", issue.id),
            "utm_campaign": nl.utm.campaign.replace("{issue}", issue.id),
        }

    def track(url: str | None) -> str:
        return markup.add_utm(url or "", utm)

    sections = []
    for section in issue.sections:
        items = []
        for item in section.items:
            summary_html = _summary_html(item.summary)
            items.append(SimpleNamespace(
                id=item.id,
                title=item.title,
                link=item.link,
                url=track(item.link),
                date=item.date,
                date_text=markup.long_date(item.date, tz, language),
                date_iso=markup.iso_date(item.date, tz),
                category=item.category or "",
                image=item.image or "",
                summary_html=Markup(summary_html),
                summary_text=markup.html_text(summary_html),
                source=item.source or "",
            ))
        sections.append(SimpleNamespace(heading=section.heading, items=items))
    events = []
    # A calendar reads in date order, whatever order the issue file lists them in.
    for event in sorted(issue.events, key=lambda e: _sort_key(e.start)):
        day, month = markup.event_day(event, tz, language)
        events.append(SimpleNamespace(
            title=event.title,
            when=markup.event_when(event, tz, language),
            day=day,
            month=month,
            location=event.location or "",
            link=event.link or "",
            url=track(event.link) if event.link else "",
        ))
    web_url = nl.web_url or ""
    view_url = f"{web_url.rstrip('/')}/{edition_page(issue.id, language, nl.language)}" if web_url and not web_page else ""
    # The address as configured: one line, or the lines written with \n in cepletter.toml.
    address = [line.strip() for line in nl.postal_address.splitlines() if line.strip()]
    return {
        "newsletter": SimpleNamespace(
            name=nl.name,
            web_url=web_url,
            postal_address=nl.postal_address,
            postal_lines=address,
            language=language,  # the edition's: the lang of the page
            unsubscribe_mailto=nl.unsubscribe_mailto or "",
            reply_to=nl.reply_to or "",
            subscribe_url=nl.subscribe_url or "",
        ),
        "issue": SimpleNamespace(
            id=issue.id,
            title=issue.title,
            subject=issue.subject,
            preheader=issue_preheader(issue, language),  # set in the file, or made from the items
            date=issue.date,
            date_text=markup.long_date(issue.date, tz, language),
            date_iso=issue.date.isoformat(),
            year=issue.date.year,
            intro_html=Markup(markup.markdown_html(issue.intro)) if issue.intro.strip() else "",
            intro_text=markup.markdown_text(issue.intro) if issue.intro.strip() else "",
            sections=sections,
            events=events,
            item_count=sum(len(s.items) for s in sections),
        ),
        "view_online_url": view_url,
        "track": track,
        "wrap": lambda text, width=None: markup.wrap(str(text), width),
        "has_unsubscribe": has_unsubscribe and not web_page,
        "web_page": web_page,
        "edition": SimpleNamespace(
            language=language,
            direction=i18n.direction(language),
            rtl=i18n.is_rtl(language),
        ),
    }


def edition_language(settings: Settings, issue: Issue) -> str:
    """The language ``issue`` is written in: its edition's, else ``[newsletter] language``.

    A ConfigError when CLDR does not know ``[newsletter] language``.
    """
    if issue.language:
        return i18n.normalise(issue.language)
    if not i18n.known(settings.newsletter.language):
        from cepletter.config import setting_line
        from cepletter.errors import ConfigError

        line = setting_line(settings, "newsletter", "language")
        where = settings.config_path.name + (f", line {line}" if line else "")
        raise ConfigError(f"{where}: [newsletter] language: {settings.newsletter.language!r} is not a language "
                          "cepletter knows (no such language in CLDR)",
                          'Use a code such as "en", "fr", "nl" or "pt-BR".')
    return i18n.normalise(settings.newsletter.language)


def edition_page(issue_id: str, language: str, main_language: str) -> str:
    """Where an edition's web page is, relative to the archive: ``2025-12/``, ``2025-12/fr/``."""
    if i18n.normalise(language) == i18n.normalise(main_language):
        return f"{issue_id}/"
    return f"{issue_id}/{i18n.normalise(language)}/"


def greeting_lines(settings: Settings, language: str, catalogue: i18n.Catalogue) -> tuple[str, str]:
    """(the greeting with {name}, the one for a subscriber without a name) of an edition in ``language``.

    ``[newsletter] greeting`` and ``greeting_fallback`` when set (for editions in
    the newsletter's own language; "" means none), else the theme's, translated.
    Never guessed from the intro: one that starts "Dear colleagues," is greeted
    too, unless greeting = "".
    """
    nl = settings.newsletter
    if nl.greeting is not None and i18n.normalise(language) == i18n.normalise(nl.language):
        return nl.greeting, nl.greeting_fallback or nl.greeting
    # Translators: %(name)s is the subscriber's name; without one, it is the translation of "reader" (e.g. "Madame, Monsieur" after "Bonjour").
    line = catalogue.gettext("Dear %(name)s,")
    return line.replace("%(name)s", "{name}"), line % {"name": catalogue.gettext("reader")}


def _sort_key(when: date | datetime) -> tuple[date, dt_time]:
    if isinstance(when, datetime):
        return (when.date(), when.timetz().replace(tzinfo=None))
    return (when, dt_time.min)


def _summary_html(summary: str) -> str:
    """An item's summary as safe HTML for a card.

    Summaries come from feeds and were sanitised when drafted; the issue file
    can be edited by hand, so they are cleaned again here, to a smaller set
    that cannot break a card's layout (no images, tables or headings).
    """
    import nh3

    from cepletter.sources.sanitize import limit_depth

    text = summary.strip()
    if not text:
        return ""
    if "<" not in text:
        text = markup.markdown_html(text)
    return nh3.clean(
        # The cleaner is quadratic in nesting depth: a hand-edited summary nested
        # thousands deep must not stall the render.
        limit_depth(text),
        tags={"p", "br", "a", "strong", "em", "b", "i", "ul", "ol", "li", "blockquote", "code"},
        attributes={"a": {"href"}},
        url_schemes={"http", "https", "mailto"},
        link_rel=None,
    ).strip()
