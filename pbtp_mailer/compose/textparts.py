"""Text-part blocks of the structured fields: images and news briefs.

Same rules as ``text``: 78 columns, URLs whole and in ``<...>``, an image is
``[image: ALT]`` and a decorative one shows nothing (but its caption).
"""

from __future__ import annotations

from pbtp_mailer.compose import markdown
from pbtp_mailer.compose.text import WIDTH, MarkdownText, underline, wrap
from pbtp_mailer.issue.model import Briefs, Image

__all__ = ["image_text", "briefs_text"]


def image_text(image: Image) -> str:
    """``[image: ALT] <LINK>`` and the caption; "" for a decorative image without one."""
    lines = []
    if not image.decorative:
        label = f"[image: {image.alt.strip()}]"
        lines.append(wrap(f"{label} <{image.link}>" if image.link else label))
    if image.caption:
        lines.append(wrap(image.caption))
    return "\n".join(lines)


def briefs_text(briefs: Briefs) -> str:
    """The heading, then each brief: its title, its text, ``<URL>`` on a line of its own."""
    avoid = "\n".join(f"{b.title}\n{b.text}" for b in briefs.items)
    renderer = MarkdownText(avoid=avoid)
    blocks = [underline(briefs.heading, "-")]
    for brief in briefs.items:
        lines = [wrap(f"* {brief.title}", hanging="  ")]
        body = renderer.render(markdown.parse(brief.text, heading_offset=3), width=WIDTH - 2)
        lines += ["  " + ln if ln else "" for ln in body.splitlines()]
        if brief.url:
            lines.append(f"  <{brief.url}>")
        blocks.append("\n".join(lines))
    if renderer.links:
        blocks.append("Links:\n" + renderer.footnotes())
    return "\n\n".join(blocks)
