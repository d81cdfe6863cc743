"""Checks on composed HTML that both ``check`` and the tests need: colours,
headings, and the links and images (syntax, placeholder hosts, and an
optional online fetch).

Colours are read from inline ``style`` attributes and ``bgcolor`` (what
premailer leaves after inlining), inherited up the tree as a mail client
would; contrast follows WCAG 2.2 (relative luminance, 4.5:1, or 3:1 for
large text). Headings must start at one ``<h1>`` and never skip a level.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

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
    "is_placeholder_host",
    "is_placeholder_url",
    "url_problem",
    "HtmlProblem",
    "html_problems",
    "link_problems",
    "web_urls",
    "fetch_urls",
    "MAX_ONLINE_URLS",
]

RGB = tuple[int, int, int]

_PLACEHOLDER_HOST = re.compile(
    r"(?:^|\.)(?:example\.(?:org|com|net)|example|invalid|test|localhost)$")
_HOST_OK = re.compile(r"^(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_][\w-]*[^\W_]\.?$"
                      r"|^\d{1,3}(?:\.\d{1,3}){3}$|^\[[0-9a-f:.]+\]$|^localhost$")
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


def is_placeholder_host(host: str) -> bool:
    """example.org/.com/.net, *.example, *.invalid, *.test, localhost (RFC 2606, 6761)."""
    return bool(_PLACEHOLDER_HOST.search(host.lower().rstrip(".")))


def is_placeholder_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return bool(host) and is_placeholder_host(host)


def url_problem(href: str) -> str | None:
    """Why ``href`` is not a usable link in an e-mail (None: it is fine)."""
    if not href:
        return "is empty"
    if re.search(r"\s", href):
        return "contains a space"
    parts = urlsplit(href)
    scheme = parts.scheme.lower()
    if scheme == "mailto":
        return None if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", unquote(parts.path)) \
            else "is not a valid mailto: address"
    if scheme == "tel":
        return None
    if scheme not in ("http", "https"):
        if not scheme:
            return "has no https:// (links in e-mail must be absolute)"
        return f"has an unknown scheme {scheme!r}"
    host = parts.hostname or ""
    if not host:
        return "has no host"
    if not _HOST_OK.match(unquote(host)):
        return f"has an invalid host {host!r}"
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "has an invalid port"
    return None


@dataclass(frozen=True)
class HtmlProblem:
    """One lint finding on composed HTML; ``check`` turns it into a located Finding."""

    code: str
    message: str
    anchor: str = ""  # the URL or text to look for in the issue ("" = made by the layout)
    field: str = ""  # "preheader", or "top" for the document as a whole
    empty_alt: bool = False  # img-alt for alt="" (fine for a decorative image)


def html_problems(html: str, text: str, *, preheader: str, postal_address: str,
                  unsubscribe: str, layout: str, budget: int,
                  skip: Callable[[str], bool] = lambda url: False) -> list[HtmlProblem]:
    """Everything ``check`` says about a composed message (HTML with slots, and its text)."""
    import lxml.html

    out = []
    size = len(html.encode("utf-8"))
    if size > budget:
        out.append(HtmlProblem("html-size", f"HTML is {size:,} bytes; Gmail clips messages "
                               f"near 102 KB (budget {budget:,}): shorten or split the issue",
                               field="top"))
    root = lxml.html.document_fromstring(html)
    name = f"layout '{layout}'"
    first = root.body[0] if len(root.body) else None
    shown = " ".join(first.text_content().split()) if first is not None else ""
    if shown != " ".join(preheader.split()):
        out.append(HtmlProblem("preheader-missing", f"preheader: {name} does not put it first "
                               "in the body (add <mj-preview>), so inboxes show other text",
                               field="preheader"))
    parts = [part for part, ok in (
        ("HTML", any(unsubscribe in (a.get("href") or "") for a in root.iter("a"))),
        ("plain-text", unsubscribe in text)) if not ok]
    if parts:
        out.append(HtmlProblem("unsubscribe-missing", f"{name}: no unsubscribe link in the "
                               f"{' and '.join(parts)} part (required by Gmail, Yahoo and "
                               "CAN-SPAM)"))
    address = " ".join(postal_address.split())
    parts = [part for part, ok in (
        ("HTML", address in " ".join(root.text_content().split())),
        ("plain-text", address in " ".join(text.split()))) if not ok]
    if parts:
        out.append(HtmlProblem("postal-address-missing", f"{name}: the postal address is "
                               f"missing from the {' and '.join(parts)} part (required by "
                               "CAN-SPAM)"))
    out.extend(link_problems(root, skip=skip))
    for heading, why in heading_problems(heading_levels(root)):
        shown = f"heading {heading[:60]!r}: " if heading else ""
        out.append(HtmlProblem("heading-order", f"{shown}{why}", anchor=heading))
    low: dict[tuple[RGB, RGB, float], list[TextContrast]] = {}
    for item in text_contrasts(root):
        if item.ratio < item.minimum:
            low.setdefault((item.fg, item.bg, item.minimum), []).append(item)
    for (fg, bg, minimum), items in low.items():
        ex = items[0]
        more = f" (and {len(items) - 1} more)" if len(items) > 1 else ""
        out.append(HtmlProblem("contrast", f"text {ex.text[:40]!r}{more}: {_hex(fg)} on "
                               f"{_hex(bg)} has contrast {ex.ratio:.2f}:1, below {minimum:g}:1",
                               anchor=ex.text))
    return out


def _hex(rgb: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def link_problems(root: Any, *, skip: Callable[[str], bool] = lambda url: False
                  ) -> list[HtmlProblem]:
    """Problems of the ``<a href>`` and ``<img>`` of a document, each (code, URL) once."""
    out: dict[tuple[str, str], HtmlProblem] = {}

    def add(code: str, url: str, message: str, empty_alt: bool = False) -> None:
        out.setdefault((code, url), HtmlProblem(code, message, anchor=url, empty_alt=empty_alt))

    for a in root.iter("a"):
        href = (a.get("href") or "").strip()
        if skip(href):
            continue
        label = " ".join(a.text_content().split())[:40]
        why = url_problem(href)
        if why:
            add("link-malformed", href, f"link {label!r}: {href!r} {why}")
            continue
        parts = urlsplit(href)
        if parts.scheme == "http":
            add("link-http", href, f"link {label!r}: {href} is http:, use https:")
        host = (parts.hostname or href.partition("@")[2]).lower()
        if is_placeholder_host(host):
            add("link-placeholder", href,
                f"link {label!r}: {href} points at the placeholder host {host}")
    for img in root.iter("img"):
        src = (img.get("src") or "").strip()
        if skip(src):
            continue
        alt = img.get("alt")
        if alt is None or not alt.strip():
            add("img-alt", src, f"image {src}: no alt text (say what it shows; "
                "Outlook and Thunderbird block images by default)", empty_alt=alt is not None)
        if not img.get("width") or not img.get("height"):
            add("img-size", src, f"image {src}: no width or height (clients show it at full "
                "size or collapse it while loading)")
        if src.startswith("http:"):
            add("img-http", src, f"image {src} is hosted over http:; clients block or warn")
        elif is_placeholder_url(src):
            add("link-placeholder", src, f"image {src} points at a placeholder host")
    return list(out.values())


def web_urls(root: Any, *, skip: Callable[[str], bool] = lambda url: False) -> list[str]:
    """The distinct well-formed http(s) links and images worth fetching (no placeholders)."""
    urls: dict[str, None] = {}
    for el, attr in [(a, "href") for a in root.iter("a")] + [(i, "src") for i in root.iter("img")]:
        url = (el.get(attr) or "").strip()
        if (url.startswith(("http://", "https://")) and not skip(url)
                and not url_problem(url) and not is_placeholder_url(url)):
            urls[url] = None
    return list(urls)


MAX_ONLINE_URLS = 200


def fetch_urls(urls: list[str], *, timeout: float = 10.0, workers: int = 8,
               transport: Any = None) -> dict[str, str | None]:
    """HEAD (then GET when HEAD is refused) each URL; an error text per broken one."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    headers = {"User-Agent": "pbtp-mailer-check/1 (link check)"}
    with httpx.Client(follow_redirects=True, timeout=timeout, headers=headers,
                      transport=transport, max_redirects=5) as client:
        def one(url: str) -> str | None:
            try:
                r = client.head(url)
                if r.status_code in (403, 405, 501):
                    r = client.get(url)
            except httpx.HTTPError as exc:
                return f"unreachable ({type(exc).__name__}: {exc})"
            return f"HTTP {r.status_code}" if r.status_code >= 400 else None

        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(urls) or 1))) as pool:
            return dict(zip(urls, pool.map(one, urls), strict=True))
