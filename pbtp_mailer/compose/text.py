"""Plain text from the same parsed content as the HTML (never scraped from HTML).

Paragraphs wrap at 78 columns without splitting URLs or words; lists keep
their numbers; links become numbered footnotes (``text [1]`` ... ``[1] URL``)
or ``<URL>`` when the text is the URL itself.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

from markdown_it.token import Token

__all__ = ["WIDTH", "wrap", "underline", "MarkdownText"]

WIDTH = 78


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


def underline(title: str, char: str = "-") -> str:
    line = wrap(title)
    longest = max(len(x) for x in line.splitlines())
    return f"{line}\n{char * min(longest, WIDTH)}"


@dataclass
class MarkdownText:
    """Renders markdown-it tokens to text; collects link footnotes across calls."""

    links: list[str] = field(default_factory=list)

    def render(self, tokens: list[Token]) -> str:
        blocks: list[str] = []
        self._blocks(tokens, 0, len(tokens), blocks, indent="")
        return "\n\n".join(b for b in blocks if b.strip())

    def footnotes(self) -> str:
        if not self.links:
            return ""
        return "\n".join(f"[{i}] {url}" for i, url in enumerate(self.links, 1))

    # -- blocks -----------------------------------------------------------
    def _blocks(self, toks: list[Token], i: int, end: int, out: list[str], indent: str) -> None:
        while i < end:
            tok = toks[i]
            if tok.type == "paragraph_open":
                out.append(wrap(self._inline(toks[i + 1]), indent=indent))
                i += 3
            elif tok.type == "heading_open":
                title = self._inline(toks[i + 1])
                out.append(underline(title, "=" if tok.tag in ("h1", "h2") else "-"))
                i += 3
            elif tok.type in ("bullet_list_open", "ordered_list_open"):
                close = self._close(toks, i)
                out.append(self._list(toks, i, close, indent))
                i = close + 1
            elif tok.type == "blockquote_open":
                close = self._close(toks, i)
                inner: list[str] = []
                self._blocks(toks, i + 1, close, inner, indent="")
                quoted = "\n\n".join(inner)
                out.append("\n".join(f"{indent}> {ln}".rstrip() for ln in quoted.splitlines()))
                i = close + 1
            elif tok.type in ("fence", "code_block"):
                code = tok.content.rstrip("\n")
                out.append("\n".join(f"{indent}    {ln}".rstrip() for ln in code.splitlines()))
                i += 1
            elif tok.type == "hr":
                out.append(indent + "-" * 20)
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

    def _list(self, toks: list[Token], i: int, close: int, indent: str) -> str:
        ordered = toks[i].type == "ordered_list_open"
        number = int(toks[i].attrGet("start") or 1) if ordered else 0
        items: list[str] = []
        j = i + 1
        while j < close:
            if toks[j].type == "list_item_open":
                item_close = self._close(toks, j)
                marker = f"{number}. " if ordered else "* "
                pad = " " * len(marker)
                inner: list[str] = []
                self._blocks(toks, j + 1, item_close, inner, indent="")
                text = "\n\n".join(inner)
                lines = []
                for k, para in enumerate(text.split("\n\n")):
                    rewrapped = wrap(para, width=WIDTH - len(indent) - len(pad)) \
                        if not para.lstrip().startswith(("* ", ">")) and "\n" not in para.strip() \
                        else para
                    for n, ln in enumerate(rewrapped.splitlines()):
                        first = k == 0 and n == 0
                        lines.append((indent + (marker if first else pad) + ln).rstrip())
                items.append("\n".join(lines))
                number += 1
                j = item_close + 1
            else:
                j += 1
        return "\n".join(items)

    # -- inline -----------------------------------------------------------
    def _inline(self, tok: Token) -> str:
        parts: list[str] = []
        link_stack: list[tuple[str, int]] = []
        for child in tok.children or []:
            t = child.type
            if t == "text" or t == "code_inline":
                parts.append(child.content)
            elif t in ("softbreak", "hardbreak"):
                parts.append(" ")
            elif t == "link_open":
                link_stack.append((str(child.attrGet("href") or ""), len(parts)))
            elif t == "link_close" and link_stack:
                href, start = link_stack.pop()
                label = "".join(parts[start:]).strip()
                if label == href or label == href.removeprefix("mailto:"):
                    parts[start:] = [f"<{href}>"]
                else:
                    self.links.append(href)
                    parts.append(f" [{len(self.links)}]")
            elif t == "image":
                alt = child.content or str(child.attrGet("alt") or "")
                parts.append(f"[image: {alt}]" if alt else "")
        return "".join(parts)
