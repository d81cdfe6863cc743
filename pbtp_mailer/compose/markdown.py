"""Markdown bodies, parsed once and rendered twice: to e-mail HTML and to plain text.

Raw HTML in Markdown is escaped (content is data), unsafe link schemes are
refused by markdown-it's link validator, and ``#`` headings are shifted
below the level the layout gives the article title so headings stay in order.
"""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token

__all__ = ["parse", "to_html"]


@lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def parse(source: str, *, heading_offset: int = 0) -> list[Token]:
    """Tokens of ``source`` with heading levels shifted by ``heading_offset`` (capped at h6)."""
    tokens = _md().parse(source)
    if heading_offset:
        for tok in tokens:
            if tok.type in ("heading_open", "heading_close"):
                level = min(6, int(tok.tag[1]) + heading_offset)
                tok.tag = f"h{level}"
    return tokens


def to_html(tokens: list[Token]) -> str:
    md = _md()
    return md.renderer.render(tokens, md.options, {})
