"""Issue → the email subscribers see: HTML (CSS inlined) and text.

Jinja2 runs once per issue with a placeholder token wherever a template
prints a per-recipient value, premailer inlines the CSS once, and the result
is cut into a `RenderedIssue` whose `fill(recipient)` only joins strings.
``render_full`` is the slow reference path (Jinja with one recipient's real
values, then premailer) that the split result must match byte for byte.
Rendering never touches the network.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cepletter
from cepletter.errors import TemplateError
from cepletter.issue.preheader import of_issue
from cepletter.render.context import (
    build_context,
    edition_language,
    greeting_lines,
    personal_unsubscribe,
    static_unsubscribe_url,
)
from cepletter.render.linewrap import layout_html
from cepletter.render.rendered import RenderedIssue
from cepletter.render.slots import (
    UNSUBSCRIBE_KEY,
    SlotMisuse,
    SlotRegistry,
    TokenRecipient,
    ValueMarks,
    ValueRecipient,
    check_no_stray_tokens,
    fallback,
    greeting,
    split_html,
    split_text,
)

if TYPE_CHECKING:
    from jinja2 import Environment

    from cepletter.config import Settings
    from cepletter.issue.file import Issue

HTML_TEMPLATE = "newsletter.html.j2"
TEXT_TEMPLATE = "newsletter.txt.j2"


def packaged_templates_dir() -> Path:
    """The default theme: inside the installed package, or the checkout's top-level templates/."""
    package = Path(cepletter.__file__).resolve().parent
    installed = package / "templates"
    if (installed / HTML_TEMPLATE).is_file():
        return installed
    return package.parent / "templates"


def template_dirs(settings: Settings) -> list[Path]:
    """Where templates are looked up, first match wins: the workspace, then the theme."""
    dirs = [settings.templates_dir, packaged_templates_dir()]
    out: list[Path] = []
    for d in dirs:
        resolved = d.resolve()
        if resolved not in out:
            out.append(resolved)
    return out


@functools.lru_cache(maxsize=8)
def _environment(dirs: tuple[str, ...], listing: tuple[str, ...], cache_dir: str | None = None) -> Environment:
    # Cached so that `preview --serve` keeps compiled templates; auto_reload
    # picks up every saved change, and ``listing`` (the files present) makes a
    # new environment when a file that overrides the theme appears or goes.
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(list(dirs), encoding="utf-8"),
        extensions=["jinja2.ext.i18n"],
        bytecode_cache=_bytecode_cache(Path(cache_dir)) if cache_dir else None,
        autoescape=select_autoescape(enabled_extensions=("html", "htm", "xml", "html.j2", "htm.j2"),
                                     default_for_string=True, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=True,
    )
    env.filters["fallback"] = fallback
    _install_gettext(env)
    return env


# The fixed texts of the templates ({{ _("Read more") }}) come from the catalogue
# of the language being rendered, which the render puts in the context: one
# environment (and one set of compiled templates) serves every language.
CATALOGUE_KEY = "_catalogue"


def _install_gettext(env: Environment) -> None:
    from jinja2 import pass_context
    from jinja2.runtime import Context

    from cepletter import i18n

    def catalogue(context: Context) -> i18n.Catalogue:
        found = context.get(CATALOGUE_KEY)
        return found if isinstance(found, i18n.Catalogue) else i18n.catalogue(i18n.SOURCE)

    @pass_context
    def gettext(context: Context, message: str) -> str:
        return catalogue(context).gettext(message)

    @pass_context
    def ngettext(context: Context, singular: str, plural: str, n: int) -> str:
        return catalogue(context).ngettext(singular, plural, n)

    @pass_context
    def pgettext(context: Context, ctx: str, message: str) -> str:
        return catalogue(context).pgettext(ctx, message)

    @pass_context
    def npgettext(context: Context, ctx: str, singular: str, plural: str, n: int) -> str:
        return catalogue(context).npgettext(ctx, singular, plural, n)

    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext, ngettext, newstyle=True, pgettext=pgettext, npgettext=npgettext)


def environment(settings: Settings) -> Environment:
    dirs = template_dirs(settings)
    listing = tuple(sorted(str(p) for d in dirs if d.is_dir() for p in d.rglob("*")))
    return _environment(tuple(str(d) for d in dirs), listing, str(settings.cache_dir / "templates"))


def _bytecode_cache(folder: Path) -> Any:
    """Compiled templates kept in the workspace cache, so a command does not compile them again.

    Jinja checks each entry against the template's source and its own and
    Python's versions; a cache that cannot be read or written is simply not used.
    """
    import contextlib

    from jinja2 import FileSystemBytecodeCache
    from jinja2.bccache import Bucket

    class QuietCache(FileSystemBytecodeCache):
        def load_bytecode(self, bucket: Bucket) -> None:
            with contextlib.suppress(OSError, ValueError, EOFError):
                super().load_bytecode(bucket)

        def dump_bytecode(self, bucket: Bucket) -> None:
            with contextlib.suppress(OSError):
                folder.mkdir(parents=True, exist_ok=True)
                super().dump_bytecode(bucket)

    return QuietCache(str(folder), "%s.jinja")


# ---------------------------------------------------------------- rendering

@dataclass
class Timings:
    """Seconds spent in each stage of the last render (for preview and benchmarks)."""

    setup: float = 0.0  # importing the inliner, once per process
    jinja: float = 0.0
    inline: float = 0.0
    text: float = 0.0
    split: float = 0.0
    cached: bool = False  # the inlined page came from the cache
    reused: bool = False  # the whole render came from the cache (nothing above ran)

    @property
    def total(self) -> float:
        return self.setup + self.jinja + self.inline + self.text + self.split


def _render_template(env: Environment, name: str, context: Mapping[str, Any]) -> str:
    from jinja2 import TemplateNotFound, TemplateSyntaxError, UndefinedError

    try:
        template = env.get_template(name)
        return template.render(context)
    except TemplateSyntaxError as exc:
        where = _template_file(exc.filename or exc.name or name)
        raise TemplateError(f"{where}, line {exc.lineno}: {exc.message}",
                            "Fix the template syntax at that line.") from None
    except TemplateNotFound as exc:
        dirs = ", ".join(str(p) for p in getattr(env.loader, "searchpath", []))
        raise TemplateError(f"template {exc.name!r} not found (looked in {dirs})",
                            "Check the name in the include/extends tag, or restore the file.") from None
    except UndefinedError as exc:
        raise TemplateError(f"{_location(exc, name)}: {exc.message}",
                            "Check the spelling of the variable; see the default theme for the names.") from None
    except SlotMisuse as exc:
        raise TemplateError(f"{_location(exc, name)}: {exc}", exc.hint) from None
    except RecursionError as exc:
        raise TemplateError(f"{_location(exc, name)}: templates include or call each other without end",
                            "Remove the include, import or macro call that loops back.") from None
    except (TypeError, ValueError, AttributeError, ZeroDivisionError, KeyError) as exc:
        raise TemplateError(f"{_location(exc, name)}: {type(exc).__name__}: {exc}",
                            "Fix the expression at that line of the template.") from None


def _template_file(filename: str) -> str:
    path = Path(filename)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _location(exc: BaseException, default: str) -> str:
    """The template file and line of the deepest template frame in the traceback."""
    found: tuple[str, int] | None = None
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith((".j2", ".jinja", ".html", ".txt", ".css")):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    if found is None:
        return default
    return f"{_template_file(found[0])}, line {found[1]}"


def _check_html(page: str, where: str) -> None:
    from lxml import etree

    if not page.strip():
        raise TemplateError(f"{where}: the template produced an empty page", "Check the template.")
    try:
        root = etree.fromstring(page, etree.HTMLParser())
    except etree.ParserError as exc:
        raise TemplateError(f"{where}: the page cannot be parsed as HTML: {exc}",
                            "Check the template's markup.") from None
    if root is None:
        # Only a comment, or text lxml cannot make a document of: nothing to inline or send.
        raise TemplateError(f"{where}: the template produced no HTML", "Check the template's markup.")


def render_issue(
    settings: Settings, issue: Issue, timings: Timings | None = None, *, cache: bool = False, reuse: bool = False
) -> RenderedIssue:
    """Render ``issue`` once for everyone: per-recipient values become fillable slots.

    With ``cache``, the inlined page is kept in the workspace's cache folder and
    reused while the page Jinja produces stays the same (see `inlinecache`), and
    the finished render is kept too; with ``reuse`` as well, a render kept for
    exactly these inputs is returned without rendering (see `rendercache`).
    """
    timings = timings if timings is not None else Timings()
    render_key = ""
    if cache:
        from cepletter.render import rendercache

        render_key = rendercache.key(settings, issue, template_dirs(settings))
        stored = rendercache.load(settings.cache_dir, render_key) if reuse else None
        if stored is not None:
            timings.cached = timings.reused = True
            return RenderedIssue(stored.issue_id, stored.subject, stored.preheader, stored.html, stored.text,
                                 stored.language, stored.untranslated)
    rendered = _render(settings, issue, timings, cache)
    if cache:
        rendercache.store(settings.cache_dir, render_key, rendercache.Stored(
            rendered.issue_id, rendered.subject, rendered.preheader, rendered.html, rendered.text,
            rendered.language, rendered.untranslated))
    return rendered


def _render(settings: Settings, issue: Issue, timings: Timings, cache: bool) -> RenderedIssue:
    from cepletter import i18n
    from cepletter.render import inliner
    from cepletter.render.inlinecache import inline_cached

    env = environment(settings)
    registry = SlotRegistry()
    context = build_context(settings, issue, bool(static_unsubscribe_url(settings)))
    language = edition_language(settings, issue)
    catalogue = context[CATALOGUE_KEY] = i18n.catalogue(language)
    context["recipient"] = TokenRecipient(registry)
    context["greeting"] = greeting(context["recipient"].name, *greeting_lines(settings, language, catalogue))
    context["unsubscribe_url"] = (
        registry.slot(UNSUBSCRIBE_KEY, known_nonempty=True)
        if personal_unsubscribe(settings) else static_unsubscribe_url(settings)
    )

    started = time.perf_counter()
    source = _render_template(env, HTML_TEMPLATE, context)
    timings.jinja = time.perf_counter() - started

    def inline(page: str) -> str:
        # Only a page about to be inlined needs the check: a cached one passed it when it was made.
        _check_html(page, HTML_TEMPLATE)
        started = time.perf_counter()
        inliner.load()
        timings.setup = time.perf_counter() - started
        started = time.perf_counter()
        result = inliner.inline_css(page)
        timings.inline = time.perf_counter() - started
        # Lines are laid out before the page is cut into slots, so every recipient's
        # copy shares them: few lines (a server reads a message line by line), none
        # over SMTP's limit for 8bit bodies. Where they fall ignores the tokens.
        # The cache keeps the laid-out page.
        return layout_html(result, opaque=registry.pattern)

    page, timings.cached = inline_cached(
        source, registry.salt, settings.cache_dir if cache else None, inline
    )

    started = time.perf_counter()
    text = _render_template(env, TEXT_TEMPLATE, context)
    timings.text = time.perf_counter() - started

    started = time.perf_counter()
    html_template = split_html(page, registry, HTML_TEMPLATE)
    text_template = split_text(text, registry)
    check_no_stray_tokens(html_template, registry, HTML_TEMPLATE)
    check_no_stray_tokens(text_template, registry, TEXT_TEMPLATE)
    timings.split = time.perf_counter() - started

    return RenderedIssue(issue.id, issue.subject, of_issue(issue, language), html_template, text_template,
                         language, tuple(catalogue.missing))


def render_full(settings: Settings, issue: Issue, values: Mapping[str, str], *,
                web_page: bool = False) -> tuple[str, str]:
    """A complete render with real values (no slots): the slow reference path.

    ``values`` are plain values as `message.personal.base_values` gives them. Sending never
    uses this; tests compare `RenderedIssue.fill` against it. With ``web_page``, the
    page of the web archive (see `build_context`).
    """
    from cepletter import i18n
    from cepletter.render.inliner import inline_css

    env = environment(settings)
    context = build_context(settings, issue, bool(static_unsubscribe_url(settings)), web_page=web_page)
    language = edition_language(settings, issue)
    context[CATALOGUE_KEY] = i18n.catalogue(language)
    lines = greeting_lines(settings, language, context[CATALOGUE_KEY])
    unsubscribe = values.get(UNSUBSCRIBE_KEY, "")
    # The HTML is laid out in lines with each value marked, as the fast path marks
    # it with a token, so that lines fall where they fall for every recipient.
    marks = ValueMarks()
    context["recipient"] = ValueRecipient(values, marks)
    context["greeting"] = greeting(context["recipient"].name, *lines)
    context["unsubscribe_url"] = marks.mark(unsubscribe) if personal_unsubscribe(settings) else unsubscribe
    page = marks.strip(layout_html(inline_css(_render_template(env, HTML_TEMPLATE, context)), opaque=marks.pattern))
    context["recipient"] = ValueRecipient(values)
    context["greeting"] = greeting(context["recipient"].name, *lines)
    context["unsubscribe_url"] = unsubscribe
    text = _render_template(env, TEXT_TEMPLATE, context)
    return page, text
