"""Markdown bodies, parsed once and rendered twice: to e-mail HTML and to plain text.

Raw HTML in Markdown is escaped (content is data), unsafe link schemes are
refused by markdown-it's link validator, and ``#`` headings are shifted
below the level the layout gives the article title so headings stay in order.
Bare ``http(s)://`` URLs and ``www.`` hosts become links (linkify-it-py), never
inside code spans; a ``www.`` host is linked as ``https://``. Images whose
``src`` is a local file are resolved by an ``images`` callback (see
``compose.images``): absolute URL under the web base, width and height.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from linkify_it import LinkifyIt
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

__all__ = ["parse", "to_html", "ImageAttrs"]

#: ``src`` -> (src, width, height) for the ``<img>``, or None to leave it as written
ImageAttrs = Callable[[str], "tuple[str, int, int] | None"]


class _WebLinks(LinkifyIt):  # type: ignore[misc]
    """linkify-it limited to what readers expect: http(s) URLs and ``www.`` hosts."""

    def __init__(self) -> None:
        super().__init__(options={"fuzzy_link": True, "fuzzy_email": False, "fuzzy_ip": False})

    def match(self, text: str) -> list[Any] | None:
        found = []
        for m in super().match(text) or []:
            raw = m.raw.lower()
            if raw.startswith(("http://", "https://")):
                found.append(m)
            elif raw.startswith("www.") and m.schema == "":
                m.url = "https://" + m.raw
                found.append(m)
        return found or None

    def test(self, text: str) -> bool:
        return bool(self.match(text))

    def match_at_start(self, text: str) -> Any:
        m = super().match_at_start(text)
        return m if m is not None and m.raw.lower().startswith(("http://", "https://")) else None


@lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": True, "typographer": False})
    md.linkify = _WebLinks()
    md.enable("linkify")
    md.add_render_rule("image", _render_image)
    return md


def _render_image(self: Any, tokens: Sequence[Token], idx: int, options: OptionsDict,
                  env: EnvType) -> str:
    tok = tokens[idx]
    resolve: ImageAttrs | None = env.get("images")
    resolved = resolve(str(tok.attrGet("src") or "")) if resolve else None
    if resolved is not None:
        src, width, height = resolved
        tok.attrSet("src", src)
        tok.attrSet("width", str(width))
        tok.attrSet("height", str(height))
        tok.attrSet("style", "display:block;max-width:100%;height:auto;border:0;")
    return str(self.image(tokens, idx, options, env))


def parse(source: str, *, heading_offset: int = 0) -> list[Token]:
    """Tokens of ``source`` with heading levels shifted by ``heading_offset`` (capped at h6)."""
    tokens = _md().parse(source)
    if heading_offset:
        for tok in tokens:
            if tok.type in ("heading_open", "heading_close"):
                level = min(6, int(tok.tag[1]) + heading_offset)
                tok.tag = f"h{level}"
    return tokens


def to_html(tokens: list[Token], images: ImageAttrs | None = None) -> str:
    md = _md()
    return md.renderer.render(tokens, md.options, {"images": images} if images else {})
