"""MJML to HTML (mjml-python, the MRML wrapper) and CSS inlining (premailer).

premailer keeps what cannot be inlined (media queries, ``:root``) in a
``<style>`` block and leaves MJML's Outlook conditional comments alone; it
drops the doctype, which we put back. MJML's stock preheader hides itself
with white 1 px text, which SpamAssassin scores as HTML_FONT_LOW_CONTRAST;
we hide it without a colour instead.
"""

from __future__ import annotations

import re

from pbtp_mailer.errors import ComposeError

__all__ = ["mjml_to_html", "inline_css", "fix_preheader"]

_MJML_PREVIEW_STYLE = (
    'style="display:none;font-size:1px;color:#ffffff;line-height:1px;'
    'max-height:0px;max-width:0px;opacity:0;overflow:hidden;"'
)
_OUR_PREVIEW_STYLE = (
    'style="display:none;max-height:0;max-width:0;opacity:0;overflow:hidden;mso-hide:all;" '
    'aria-hidden="true"'
)


def mjml_to_html(source: str, *, layout: str = "") -> str:
    import mjml  # mjml-python

    try:
        return mjml.mjml2html(source)
    except Exception as exc:  # MRML raises plain exceptions with its parser message
        raise ComposeError(f"layout {layout!r}: MJML error: {exc}") from None


def fix_preheader(html: str) -> str:
    if _MJML_PREVIEW_STYLE not in html:
        return html
    return html.replace(_MJML_PREVIEW_STYLE, _OUR_PREVIEW_STYLE, 1)


_premailer_cache: dict[str, object] = {}


def inline_css(html: str) -> str:
    import logging

    from premailer import Premailer

    try:
        out = Premailer(
            html,
            keep_style_tags=False,
            remove_classes=False,
            strip_important=False,
            disable_validation=True,
            cssutils_logging_level=logging.CRITICAL,
            allow_network=False,
            allow_loading_external_files=False,
            cache_css_parsing=True,
            # MJML's "img { height: auto }" would overwrite every <img height="N">
            # with height="auto": the size we set so clients reserve the image's box
            disable_basic_attributes=["height"],
        ).transform()
    except Exception as exc:
        raise ComposeError(f"CSS inlining failed: {exc}") from None
    out = re.sub(r"^\s*<!DOCTYPE[^>]*>\s*", "", out, flags=re.I)
    return "<!doctype html>\n" + out
