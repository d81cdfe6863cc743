"""The text/plain part of an issue, built from the issue itself (not from HTML).

The layout's ``email.txt.j2`` decides what the part says and in which order
(a layout without one uses the default layout's); this module only turns
each Markdown field into wrapped text with link footnotes (``text.py``) and
hands the template data, never anything it would evaluate.
"""

from __future__ import annotations

from pathlib import Path

from pbtp_mailer.compose import markdown
from pbtp_mailer.compose.layouts import Slots, render_text
from pbtp_mailer.compose.text import MarkdownText, article_text
from pbtp_mailer.compose.textparts import briefs_text, image_text
from pbtp_mailer.config import Newsletter
from pbtp_mailer.issue.model import Issue

__all__ = ["issue_text"]


def _markdown_text(source: str, *, avoid: str) -> dict[str, str]:
    """``{"body": wrapped text, "links": footnotes or ""}`` of one Markdown field.

    ``avoid`` is the text around it: link markers are chosen so that none of
    them already appears there (a "[1]" citation is never taken for a link).
    """
    renderer = MarkdownText(avoid=avoid)
    body = renderer.render(markdown.parse(source, heading_offset=2))
    return {"body": body, "links": renderer.footnotes() if renderer.links else ""}


def issue_text(issue: Issue, nl: Newsletter, urls: dict[str, str], *,
               personal: bool, banner: str | None, layout: Path | None = None) -> str:
    """The text part; ``layout`` is the layout folder (default: the shipped one)."""
    articles = [{"article": a, "image": image_text(a.image) if a.image else "",
                 **_markdown_text(a.body, avoid=article_text(a))} for a in issue.articles]
    rm = issue.read_more
    read_more = (_markdown_text(rm.text, avoid=rm.text) if rm and rm.text
                 else {"body": "", "links": ""})
    return render_text(layout, {
        "issue": issue, "nl": nl, "urls": urls, "personal": personal, "banner": banner,
        "hero": image_text(issue.hero) if issue.hero else "",
        "articles": articles, "read_more": read_more,
        "briefs": briefs_text(issue.briefs) if issue.briefs else "", "slot": Slots(),
    })
