"""Bare URLs become links in both parts; plain-text link markers never collide with content."""

from __future__ import annotations

import re

import pytest

from pbtp_mailer.compose import markdown
from pbtp_mailer.compose.text import WIDTH, MarkdownText, marker_style


def html(src: str) -> str:
    return markdown.to_html(markdown.parse(src))


def text(src: str, avoid: str | None = None) -> tuple[str, MarkdownText]:
    r = MarkdownText(avoid=src if avoid is None else avoid)
    return r.render(markdown.parse(src)), r


@pytest.mark.parametrize("src, href", [
    ("See https://example.org/a?b=1&c=2 now.", "https://example.org/a?b=1&amp;c=2"),
    ("Query https://example.org/search?q=x.", "https://example.org/search?q=x"),
    ("Wiki (https://en.wikipedia.org/wiki/Foo_(bar)).", "https://en.wikipedia.org/wiki/Foo_(bar)"),
    ("Old http://example.org/p, too.", "http://example.org/p"),
    ("Host www.example.org/x.", "https://www.example.org/x"),
])
def test_bare_urls_are_linked(src, href):
    out = html(src)
    assert f'<a href="{href}">' in out, out


@pytest.mark.parametrize("src", [
    "In code: `https://example.org/x` stays code.",
    "Not a host: example.org, me@example.org, ftp://example.org/x, mailto:a@example.org.",
    "Escaped: http\\://example.org",
])
def test_not_linked(src):
    assert "<a " not in html(src)


def test_url_in_backticks_is_not_linked_in_text_either():
    out, r = text("Type `https://example.org/x` in the box.")
    assert out == "Type https://example.org/x in the box."
    assert not r.links


def test_bare_url_in_text_part_is_angle_bracketed():
    out, _ = text("Protocol at https://example.org/p?a=1&b=(2) and www.example.org.")
    assert out == "Protocol at <https://example.org/p?a=1&b=(2)> and <https://www.example.org>."


def test_inline_url_after_link_text_when_it_fits():
    out, r = text("See [the committee's page](https://example.org/imaging) now.")
    assert out == "See the committee's page <https://example.org/imaging> now."
    assert not r.links


CITING = (
    "The literature [1]–[20] supports it, see [the Imaging Committee's page]"
    "(https://example.org/imaging) and [the protocol](https://example.org/protocols/"
    "a011202/amendment-7/full-text-with-appendices-and-consent-forms.pdf?version=7&lang=en) "
    "for the details of [21] and [L3]."
)


def test_citing_paragraph_markers_appear_nowhere_else():
    out, r = text(CITING)
    assert r.links == ["https://example.org/protocols/a011202/amendment-7/full-text-with-"
                       "appendices-and-consent-forms.pdf?version=7&lang=en"]
    assert r.style == "[link {n}]"  # "[1]" and "[L3]" are the article's own text
    marker = r.marker(1)
    assert marker not in CITING
    assert out.count(marker) == 1 and r.footnotes().count(marker) == 1
    assert "<https://example.org/imaging>" in out
    for line in (out + "\n" + r.footnotes()).splitlines():
        assert len(line) <= WIDTH or re.fullmatch(r"https://\S+", line), line


def test_marker_style_skips_styles_in_use():
    assert marker_style("no brackets") == "[{n}]"
    assert marker_style("cites [12]") == "[L{n}]"
    assert marker_style("cites [ 3 ] and [L2]") == "[link {n}]"
    assert marker_style("[1] [l1] [Link 1] [link 2]") == "{{{n}}}"


LONG = "https://example.org/" + "x" * 90


@pytest.mark.parametrize("src, prefix", [
    ("> " + "quoted words here " * 12, "> "),
    ("> > " + "deeper quoted words " * 12, "> > "),
    ("1. " + "list words here " * 12 + "\n\n   > " + "quote in a list " * 12, ""),
    ("- item\n  - " + "nested item words " * 12, ""),
    ("> - " + "quoted list item " * 12, "> "),
    ("> # " + "a quoted heading " * 5, "> "),
    ("> see " + LONG + " and more words " * 6, "> "),
])
def test_every_line_within_78_with_prefixes(src, prefix):
    out, _ = text(src)
    assert out.startswith(prefix)
    for line in out.splitlines():
        assert len(line) <= WIDTH or re.fullmatch(r"[>\s]*<?https://\S+>?", line), line


def test_long_url_stands_alone_never_broken():
    out, _ = text("Read " + LONG + " today, it says a lot about everything.")
    assert f"\n<{LONG}>\n" in out


def test_images_in_text():
    out, _ = text("![Chart of enrolment](chart.png) ![](rule.png)")
    assert out == "[image: Chart of enrolment]"
