"""CSS inlining with premailer: once per issue, offline, and quiet.

premailer logs through cssutils and may warn through ``warnings``; none of
that is for the user's terminal. External stylesheets are never fetched.
"""

from __future__ import annotations

import logging
import warnings


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
        page,
        allow_network=False,
        allow_loading_external_files=False,
        disable_link_rewrites=True,
        disable_validation=True,
        strip_important=False,
        keep_style_tags=False,
        remove_classes=False,
        cssutils_logging_level=logging.CRITICAL,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out: str = inliner.transform(pretty_print=False)
    return out
