"""Checks on composed HTML that both ``check`` and the tests need.

Colours are read from inline ``style`` attributes and ``bgcolor`` (what
premailer leaves after inlining), inherited up the tree as a mail client
would; contrast follows WCAG 2.2 (relative luminance, 4.5:1, or 3:1 for
large text). Headings must start at one ``<h1>`` and never skip a level.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "RGB",
    "style_of",
    "parse_color",
    "contrast",
    "inherited_color",
    "TextContrast",
    "text_contrasts",
    "heading_levels",
    "heading_problems",
    "is_hidden",
]

RGB = tuple[int, int, int]

_NAMED = {"white": (255, 255, 255), "black": (0, 0, 0)}


def style_of(el: Any) -> dict[str, str]:
    """The inline style of an lxml element as ``{property: value}`` (lowercase, no !important)."""
    out = {}
    for decl in (el.get("style") or "").split(";"):
        if ":" in decl:
            k, v = decl.split(":", 1)
            out[k.strip().lower()] = v.strip().lower().replace("!important", "").strip()
    return out


def parse_color(value: str) -> RGB | None:
    """``#rrggbb``, ``#rgb``, ``rgb(r, g, b)`` or white/black; None for anything else."""
    value = value.strip().lower()
    if re.fullmatch(r"#[0-9a-f]{6}", value):
        return (int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16))
    if re.fullmatch(r"#[0-9a-f]{3}", value):
        return (int(value[1] * 2, 16), int(value[2] * 2, 16), int(value[3] * 2, 16))
    m = re.fullmatch(r"rgb\(\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*\)", value)
    if m:
        r, g, b = (min(255, int(x)) for x in m.groups())
        return (r, g, b)
    return _NAMED.get(value)


def _luminance(rgb: RGB) -> float:
    def channel(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    """WCAG contrast ratio of two colours (1.0 to 21.0)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def inherited_color(el: Any, prop: str, attr: str | None = None) -> RGB:
    """The first ``prop`` (or ``attr``) set on ``el`` or an ancestor; black text on white."""
    while el is not None:
        st = style_of(el)
        if prop in st and parse_color(st[prop]):
            return parse_color(st[prop])  # type: ignore[return-value]
        if prop == "background-color" and "background" in st:
            first = st["background"].split()[0] if st["background"].split() else ""
            if parse_color(first):
                return parse_color(first)  # type: ignore[return-value]
        if attr and el.get(attr) and parse_color(el.get(attr)):
            return parse_color(el.get(attr))  # type: ignore[return-value]
        el = el.getparent()
    return (0, 0, 0) if prop == "color" else (255, 255, 255)


def _font_px(el: Any) -> float | None:
    while el is not None:
        size = style_of(el).get("font-size", "")
        if size.endswith("px"):
            try:
                return float(size[:-2])
            except ValueError:
                return None
        el = el.getparent()
    return None


def _bold(el: Any) -> bool:
    while el is not None:
        if el.tag in ("strong", "b", "h1", "h2", "h3", "h4", "h5", "h6"):
            return True
        weight = style_of(el).get("font-weight")
        if weight:
            return weight == "bold" or (weight.isdigit() and int(weight) >= 700)
        el = el.getparent()
    return False


def is_hidden(el: Any) -> bool:
    """Hidden by ``display:none`` on itself or an ancestor (the preheader, Outlook-only parts)."""
    while el is not None:
        if style_of(el).get("display") == "none":
            return True
        el = el.getparent()
    return False


@dataclass(frozen=True)
class TextContrast:
    element: Any
    text: str
    fg: RGB
    bg: RGB
    ratio: float
    large: bool

    @property
    def minimum(self) -> float:
        return 3.0 if self.large else 4.5


def text_contrasts(root: Any) -> Iterator[TextContrast]:
    """Every visible element with its own text, with its colours and contrast ratio."""
    body = root.body if hasattr(root, "body") else root
    for el in body.iter():
        if not isinstance(el.tag, str) or not (el.text or "").strip() or is_hidden(el):
            continue
        fg = inherited_color(el, "color")
        bg = inherited_color(el, "background-color", attr="bgcolor")
        px = _font_px(el) or 16.0
        large = px >= 24 or (px >= 18.66 and _bold(el))
        yield TextContrast(el, (el.text or "").strip(), fg, bg, contrast(fg, bg), large)


def heading_levels(root: Any) -> list[tuple[int, str]]:
    """``(level, text)`` of every heading, in document order."""
    return [(int(h.tag[1]), " ".join(h.text_content().split()))
            for h in root.iter("h1", "h2", "h3", "h4", "h5", "h6")]


def heading_problems(levels: list[tuple[int, str]]) -> list[tuple[str, str]]:
    """``(heading text, why)`` for each heading breaking the outline."""
    out: list[tuple[str, str]] = []
    ones = [text for level, text in levels if level == 1]
    if not ones:
        out.append(("", "there is no level-1 heading"))
    elif len(ones) > 1:
        out.extend((text, "a second level-1 heading (there must be one)") for text in ones[1:])
    if levels and levels[0][0] != 1:
        out.append((levels[0][1], f"the first heading is h{levels[0][0]}, not h1"))
    for (a, _), (b, text) in zip(levels, levels[1:], strict=False):
        if b > a + 1:
            out.append((text, f"h{b} follows h{a}: a heading level is skipped"))
    return out
