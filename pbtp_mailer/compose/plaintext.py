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
from pbtp_mailer.compose.text import MarkdownText
from pbtp_mailer.config import Newsletter
from pbtp_mailer.issue.model import Issue

__all__ = ["issue_text"]


def _markdown_text(source: str) -> dict[str, str]:
    """``{"body": wrapped text, "links": numbered footnotes or ""}`` of one Markdown field."""
    renderer = MarkdownText()
    body = renderer.render(markdown.parse(source, heading_offset=2))
    return {"body": body, "links": renderer.footnotes() if renderer.links else ""}


def issue_text(issue: Issue, nl: Newsletter, urls: dict[str, str], *,
               personal: bool, banner: str | None, layout: Path | None = None) -> str:
    """The text part; ``layout`` is the layout folder (default: the shipped one)."""
    articles = [{"article": a, **_markdown_text(a.body)} for a in issue.articles]
    rm = issue.read_more
    read_more = _markdown_text(rm.text) if rm and rm.text else {"body": "", "links": ""}
    return render_text(layout, {
        "issue": issue, "nl": nl, "urls": urls, "personal": personal, "banner": banner,
        "articles": articles, "read_more": read_more, "slot": Slots(),
    })
