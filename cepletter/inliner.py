"""CSS inlining with premailer: once per issue, offline, and quiet.

premailer logs through cssutils and may warn through ``warnings``; none of
that is for the user's terminal. External stylesheets are never fetched.
"""

from __future__ import annotations

import logging
import re
import warnings

# cssutils fetches @import-ed stylesheets itself, whatever premailer's
# allow_network says; an email cannot use @import anyway, so they go.
_IMPORT = re.compile(r"@import\s[^;{}]*;?", re.I)
_STYLE = re.compile(r"(<style\b[^>]*>)(.*?)(</style\s*>)", re.I | re.S)


def drop_imports(page: str) -> str:
    """The page without @import rules in its <style> blocks."""
    return _STYLE.sub(lambda m: m.group(1) + _IMPORT.sub("", m.group(2)) + m.group(3), page)


def load() -> None:
    """Import premailer and cssutils (a third of a second, once per process)."""
    import cssutils  # noqa: F401
    import premailer  # noqa: F401


def inline_css(page: str) -> str:
    """Move the rules of the page's <style> blocks into style attributes.

    Rules that cannot be inlined (``@media``, pseudo-classes) stay in a <style>
    block, marked ``!important`` so they win over the inline styles.
    """
    import cssutils
    from premailer import Premailer

    cssutils.log.setLevel(logging.CRITICAL)
    logging.getLogger("CSSUTILS").setLevel(logging.CRITICAL)
    inliner = Premailer(
        drop_imports(page),
        allow_network=False,
        allow_loading_external_files=False,
        disable_link_rewrites=True,
        disable_validation=True,
        strip_important=False,
        keep_style_tags=False,
        remove_classes=False,
        # Its check for floated images parses every image style with full
        # CSS validation, which costs a third of a second on first use; the
        # theme floats no images.
        align_floating_images=False,
        cssutils_logging_level=logging.CRITICAL,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out: str = inliner.transform(pretty_print=False)
    return out
