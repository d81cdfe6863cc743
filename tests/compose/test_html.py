"""The composed HTML, against EMAIL-STANDARDS.md sections 3 and 4."""

from __future__ import annotations

import re

import lxml.html
import pytest

from pbtp_mailer.compose.layouts import SLOT_PREFIX
from pbtp_mailer.editor.htmlcheck import heading_levels, heading_problems, style_of, text_contrasts


@pytest.fixture(scope="module")
def doc(built):
    html = (built.folder / "email.html").read_text(encoding="utf-8")
    return html, lxml.html.document_fromstring(html)


_style = style_of


def test_lang_and_dir_on_html_and_body_wrapper(doc):
    _, root = doc
    assert root.get("lang") == "en" and root.get("dir") == "ltr"
    wrapper = root.body.xpath("./div[@lang]")
    assert wrapper and wrapper[0].get("lang") == "en" and wrapper[0].get("dir") == "ltr"


def test_title_is_subject_and_charset_utf8(doc, built):
    html, root = doc
    assert root.findtext(".//title") == built.rendition.subject
    assert re.search(r'<meta http-equiv="Content-Type" content="text/html; charset=UTF-8"', html)
    html.encode("utf-8")


def test_preheader_first_body_element_hidden_without_low_contrast(doc, built):
    _, root = doc
    first = root.body[0]
    assert first.text_content().strip() == built.rendition.preheader
    st = _style(first)
    assert st["display"] == "none" and "color" not in st and "font-size" not in st
    assert built.rendition.preheader not in built.rendition.text


def test_layout_tables_are_presentation(doc):
    _, root = doc
    tables = root.xpath("//table")
    assert tables
    assert all(t.get("role") == "presentation" for t in tables)


def test_images_have_alt_width_height(doc):
    _, root = doc
    for img in root.xpath("//img"):
        assert img.get("alt") is not None and img.get("width") and img.get("height")


def test_body_text_at_least_14px(doc):
    _, root = doc
    sizes = []
    preheader = root.body[0]
    for el in root.body.iter():
        if not isinstance(el.tag, str) or not (el.text or "").strip() or el is preheader:
            continue
        node = el
        while node is not None and "font-size" not in _style(node):
            node = node.getparent()
        assert node is not None, el.tag
        size = _style(node)["font-size"]
        px = float(size.removesuffix("px"))
        sizes.append(px)
        assert px >= 14, (el.tag, (el.text or "")[:40], size)
    assert len(sizes) > 30


def test_text_contrast_at_least_4_5(doc):
    _, root = doc
    checked = list(text_contrasts(root))
    assert len(checked) > 30
    for item in checked:
        assert item.ratio >= 4.5, (item.element.tag, item.text[:40], item.fg, item.bg)


def test_headings_in_order_with_one_h1(doc):
    _, root = doc
    levels = heading_levels(root)
    assert [lv for lv, _ in levels].count(1) == 1 and levels[0][0] == 1
    assert heading_problems(levels) == []


def test_html_under_gmail_clip_budget(built):
    assert built.files["email.html"] <= 90_000
    assert len(built.rendition.html.encode()) <= 90_000


def test_media_queries_outlook_comments_and_dark_mode_kept(doc):
    html, _ = doc
    assert re.search(r"@media only screen and \(min-width: ?480px\)", html)
    assert "@media (prefers-color-scheme: dark)" in html
    assert "<!--[if mso | IE]>" in html and "<!--[if mso]>" in html
    assert '<meta name="color-scheme" content="light dark">' in html
    assert html.startswith("<!doctype html>")


def test_style_blocks_small_and_in_head(doc):
    html, root = doc
    styles = root.xpath("//style")
    assert all(s.getparent().tag == "head" for s in styles)
    assert sum(len(s.text or "") for s in styles) <= 16_000


def test_every_reference_doi_is_a_link(doc, march):
    _, root = doc
    hrefs = set(root.xpath("//a/@href"))
    for ref in march.articles[0].references:
        assert f"https://doi.org/{ref.doi}" in hrefs
        if ref.pmid:
            assert ref.pubmed_url in hrefs
        if ref.pmcid:
            assert ref.pmc_url in hrefs


def test_footer_has_unsubscribe_and_postal_address(doc, config):
    _, root = doc
    text = root.text_content()
    assert config.newsletter.postal_address in text
    assert any(a.get("href", "").startswith(config.newsletter.unsubscribe_base_url)
               and "nsubscribe" in a.text_content() for a in root.xpath("//a"))


def test_no_slot_markers_left_in_built_files(built):
    for name in ("email.html", "email.txt", "web.html"):
        assert SLOT_PREFIX not in (built.folder / name).read_text(encoding="utf-8")


def test_web_version_has_no_personal_parts(built):
    web = (built.folder / "web.html").read_text(encoding="utf-8")
    assert "reader@example.org" not in web and "SAMPLE-TOKEN" not in web
    assert "Unsubscribe" not in web


def test_links_are_descriptive(doc):
    _, root = doc
    for a in root.xpath("//a"):
        label = a.text_content().strip().lower()
        assert label and label not in {"here", "click here", "link", "more"}
