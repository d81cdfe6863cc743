"""Plain text from the same parsed content as the HTML (never scraped from HTML).

Lines keep to 78 columns *including* quote (``> ``) and list prefixes; words
and URLs are never split, so a URL longer than the line stands alone on its
line (after the prefix). Lists keep their numbers.

Links, so that no marker can be mistaken for bracketed text of the article
(citations such as "[1]-[20]"):

- a link whose text is its URL (autolinks, bare URLs) is written ``<URL>``;
- otherwise the URL follows its text inline, ``text <URL>``, when ``<URL>``
  fits on a line;
- a longer URL gets a footnote marker after the text, in the first style of
  ``MARKER_STYLES`` that the article's own text never uses (``[1]``, else
  ``[L1]``, ...), listed under "Links:" after the article, URL on its own line.

Images are ``[image: ALT]``; an image with an empty alt (decorative) is left out.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

from markdown_it.token import Token

__all__ = ["WIDTH", "MARKER_STYLES", "wrap", "underline", "marker_style", "article_text", "MarkdownText"]

WIDTH = 78

#: footnote marker styles, tried in order; ``{n}`` is the link's number
MARKER_STYLES = ("[{n}]", "[L{n}]", "[link {n}]", "{{{n}}}", "[[{n}]]")


def wrap(text: str, *, width: int = WIDTH, indent: str = "", hanging: str | None = None) -> str:
    """Wrap one paragraph; long words (URLs) stay whole on their own line."""
    return textwrap.fill(
        " ".join(text.split()),
        width=width,
        initial_indent=indent,
        subsequent_indent=indent if hanging is None else hanging,
        break_long_words=False,
        break_on_hyphens=False,
    )


def underline(title: str, char: str = "-", *, width: int = WIDTH) -> str:
    line = wrap(title, width=width)
    longest = max(len(x) for x in line.splitlines())
    return f"{line}\n{char * min(longest, width)}"


def marker_style(*texts: str) -> str:
    """The first marker style whose pattern appears in none of ``texts``."""
    joined = "\n".join(texts)
    for style in MARKER_STYLES:
        head, _, tail = style.partition("{n}")
        pattern = re.escape(head.replace("{{", "{")) + r"\s*\d+\s*" + re.escape(
            tail.replace("}}", "}"))
        if not re.search(pattern, joined, re.I):
            return style
    return MARKER_STYLES[-1]  # pragma: no cover - content using all five styles


def article_text(article: Any) -> str:
    """All the text an article shows (for ``marker_style``)."""
    refs = [f"{r.citation} {r.note or ''}" for r in article.references]
    return "\n".join([article.kicker or "", article.title, article.body, *refs])


def _prefixed(text: str, first: str, rest: str) -> str:
    return "\n".join(((first if n == 0 else rest) + ln).rstrip()
                     for n, ln in enumerate(text.splitlines()))


@dataclass
class MarkdownText:
    """Renders markdown-it tokens to text; collects footnoted links across calls.

    ``avoid``: the article's own text, so the footnote marker style is one it
    never uses (see ``marker_style``).
    """

    avoid: str = ""
    links: list[str] = field(default_factory=list)
    _style: str | None = field(default=None, repr=False)

    @property
    def style(self) -> str:
        if self._style is None:
            self._style = marker_style(self.avoid)
        return self._style

    def marker(self, n: int) -> str:
        return self.style.format(n=n)

    def render(self, tokens: list[Token], *, width: int = WIDTH) -> str:
        blocks: list[str] = []
        self._blocks(tokens, 0, len(tokens), blocks, width)
        return "\n\n".join(b for b in blocks if b.strip())

    def footnotes(self) -> str:
        return "\n".join(f"{self.marker(i)}\n{url}" if len(self.marker(i)) + 1 + len(url) > WIDTH
                         else f"{self.marker(i)} {url}"
                         for i, url in enumerate(self.links, 1))

    # -- blocks -----------------------------------------------------------
    def _blocks(self, toks: list[Token], i: int, end: int, out: list[str], width: int) -> None:
        while i < end:
            tok = toks[i]
            if tok.type == "paragraph_open":
                text = wrap(self._inline(toks[i + 1], width), width=width)
                if text.strip():
                    out.append(text)
                i += 3
            elif tok.type == "heading_open":
                title = self._inline(toks[i + 1], width)
                out.append(underline(title, "=" if tok.tag in ("h1", "h2") else "-", width=width))
                i += 3
            elif tok.type in ("bullet_list_open", "ordered_list_open"):
                close = self._close(toks, i)
                out.append(self._list(toks, i, close, width))
                i = close + 1
            elif tok.type == "blockquote_open":
                close = self._close(toks, i)
                inner: list[str] = []
                self._blocks(toks, i + 1, close, inner, width - 2)
                out.append(_prefixed("\n\n".join(inner), "> ", "> "))
                i = close + 1
            elif tok.type in ("fence", "code_block"):
                code = tok.content.rstrip("\n")
                out.append(_prefixed(code, "    ", "    "))
                i += 1
            elif tok.type == "hr":
                out.append("-" * 20)
                i += 1
            else:
                i += 1

    @staticmethod
    def _close(toks: list[Token], i: int) -> int:
        depth = 0
        for j in range(i, len(toks)):
            depth += toks[j].nesting
            if depth == 0:
                return j
        return len(toks) - 1  # pragma: no cover - markdown-it always closes

    def _list(self, toks: list[Token], i: int, close: int, width: int) -> str:
        ordered = toks[i].type == "ordered_list_open"
        number = int(toks[i].attrGet("start") or 1) if ordered else 0
        last = number + sum(1 for t in toks[i:close] if t.type == "list_item_open"
                            and t.level == toks[i].level + 1) - 1
        pad = " " * (len(f"{last}. ") if ordered else 2)
        items: list[str] = []
        j = i + 1
        while j < close:
            if toks[j].type == "list_item_open":
                item_close = self._close(toks, j)
                marker = f"{number}. ".ljust(len(pad)) if ordered else "* "
                inner: list[str] = []
                self._blocks(toks, j + 1, item_close, inner, width - len(pad))
                items.append(_prefixed("\n\n".join(inner) or " ", marker, pad))
                number += 1
                j = item_close + 1
            else:
                j += 1
        return "\n".join(items)

    # -- inline -----------------------------------------------------------
    def _inline(self, tok: Token, width: int) -> str:
        parts: list[str] = []
        link_stack: list[tuple[str, int]] = []
        for child in tok.children or []:
            t = child.type
            if t in ("text", "code_inline", "text_special"):
                parts.append(child.content)
            elif t in ("softbreak", "hardbreak"):
                parts.append(" ")
            elif t == "link_open":
                link_stack.append((str(child.attrGet("href") or ""), len(parts)))
            elif t == "link_close" and link_stack:
                href, start = link_stack.pop()
                label = "".join(parts[start:]).strip()
                parts.append(self._link(href, label, start, parts, width))
            elif t == "image":
                alt = child.content or str(child.attrGet("alt") or "")
                parts.append(f"[image: {alt}]" if alt.strip() else "")
        return "".join(parts)

    def _link(self, href: str, label: str, start: int, parts: list[str], width: int) -> str:
        """What follows a link's text (or replaces it, for a URL shown as itself)."""
        bare = href.removeprefix("mailto:")
        if label in (href, bare) or "https://" + label == href or not label:
            parts[start:] = []
            return f"<{href}>"
        if len(href) + 2 <= width:
            return f" <{href}>"
        self.links.append(href)
        return f" {self.marker(len(self.links))}"
