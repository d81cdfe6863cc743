"""The rendered e-mail in a real headless Chromium (Debian `chromium` via Playwright):
no horizontal overflow at phone to desktop widths, readable in light and dark mode."""

from __future__ import annotations

import pytest

from tests.conftest import chromium_path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(chromium_path() is None,
                       reason="Debian chromium is not installed (scripts/test.sh installs it)"),
]

# For each visible element with its own text: computed colour, the first opaque
# background up the tree, font size and weight.
CONTRAST_JS = """
() => {
  const parse = c => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(',').map(Number); return {r:p[0], g:p[1], b:p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v/12.92 : Math.pow((v+0.055)/1.055, 2.4); };
    return 0.2126*f(c.r) + 0.7152*f(c.g) + 0.0722*f(c.b); };
  const bgOf = el => { for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor); if (c && c.a > 0.5) return c; }
    return parse(getComputedStyle(document.documentElement).backgroundColor) || {r:255,g:255,b:255,a:1}; };
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const r = el.getBoundingClientRect(); const cs = getComputedStyle(el);
    if (r.width === 0 || r.height === 0 || cs.display === 'none' || cs.visibility === 'hidden' || cs.opacity === '0') continue;
    const fg = parse(cs.color), bg = bgOf(el);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    out.push({text: el.textContent.trim().slice(0, 40), ratio: (hi + 0.05) / (lo + 0.05),
              size: parseFloat(cs.fontSize), bold: parseInt(cs.fontWeight) >= 700});
  }
  return out;
}
"""

OVERFLOW_JS = """
() => {
  const w = document.documentElement.clientWidth;
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect(); const cs = getComputedStyle(el);
    if (cs.display === 'none' || r.width === 0) continue;
    if (r.right > w + 1) wide.push(el.tagName + ' ' + (el.className || '') + ' ' + Math.round(r.right));
  }
  return {scroll: document.documentElement.scrollWidth, width: w, wide: wide.slice(0, 5)};
}
"""


@pytest.fixture(scope="module")
def page(browser):
    context = browser.new_context(java_script_enabled=True)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="module")
def email_html(built):
    return (built.folder / "email.html").read_text(encoding="utf-8")


def test_no_external_resources(email_html):
    assert "fonts.googleapis" not in email_html
    assert "<link" not in email_html


@pytest.mark.parametrize("width", [320, 375, 600, 1024])
@pytest.mark.parametrize("which", ["email.html", "web.html"])
def test_no_horizontal_overflow(page, built, width, which):
    page.set_viewport_size({"width": width, "height": 900})
    page.set_content((built.folder / which).read_text(encoding="utf-8"))
    result = page.evaluate(OVERFLOW_JS)
    assert result["scroll"] <= result["width"], result
    assert result["wide"] == [], result


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_readable(page, email_html, scheme):
    page.set_viewport_size({"width": 600, "height": 900})
    page.emulate_media(color_scheme=scheme)
    page.set_content(email_html)
    items = page.evaluate(CONTRAST_JS)
    assert len(items) > 30
    for item in items:
        large = item["size"] >= 24 or (item["bold"] and item["size"] >= 18.66)
        assert item["ratio"] >= (3.0 if large else 4.5), (scheme, item)
        assert item["size"] >= 14, item
    if scheme == "dark":
        bg = page.evaluate("() => getComputedStyle(document.querySelector('.pb-section td')).backgroundColor")
        assert bg == "rgb(22, 31, 43)", "dark-mode rules did not apply"
