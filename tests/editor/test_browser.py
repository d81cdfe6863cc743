"""Preview and archive in a real headless Chromium (Debian `chromium` via Playwright)."""

from __future__ import annotations

import re
import time

import pytest

from tests.compose.test_chromium import OVERFLOW_JS
from tests.conftest import chromium_path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(chromium_path() is None,
                       reason="Debian chromium is not installed (scripts/test.sh installs it)"),
]

FRAMES_JS = """
() => [...document.querySelectorAll('iframe')].map(f => {
  const d = f.contentDocument;
  return {id: f.id, inner: f.contentWindow.innerWidth,
          scroll: d && d.documentElement ? d.documentElement.scrollWidth : -1,
          client: d && d.documentElement ? d.documentElement.clientWidth : -1,
          text: d && d.body ? d.body.innerText : ''};
})
"""

PHONE_HAS = """
(needle) => { const f = document.getElementById('phone');
  return !!(f && f.contentDocument && f.contentDocument.body
            && f.contentDocument.body.innerText.includes(needle)); }
"""


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture()
def preview(project):
    from pbtp_mailer.editor.preview import PreviewServer

    server = PreviewServer("issues/2024-03.yaml", port=0).start()
    yield server
    server.close()


def _edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def _wait(page, js, arg=None, *, seconds=2.0) -> float:
    t0 = time.monotonic()
    page.wait_for_function(js, arg=arg, timeout=seconds * 1000, polling=50)
    return time.monotonic() - t0


def test_preview_loads_with_phone_and_desktop_widths(page, preview):
    assert preview.url.startswith("http://127.0.0.1:")
    page.goto(preview.url)
    _wait(page, PHONE_HAS, "Spotlight on New Alliance Program")
    _wait(page, "() => [...document.querySelectorAll('iframe')].every("
                "f => f.contentDocument && f.contentDocument.readyState === 'complete')")
    frames = {f["id"]: f for f in page.evaluate(FRAMES_JS)}
    assert frames["phone"]["inner"] == 375
    assert frames["desktop"]["inner"] >= 600
    assert frames["dark"]["inner"] >= 600
    for f in frames.values():  # the e-mail fits each width
        assert f["scroll"] <= f["client"], f
        assert "Breaking New Ground" in f["text"]
    dark_bg = page.evaluate("() => getComputedStyle(document.getElementById('dark')"
                            ".contentDocument.querySelector('.pb-section td')).backgroundColor")
    assert dark_bg == "rgb(22, 31, 43)"
    assert "View this issue in your browser" in page.inner_text("#text")
    headers = page.inner_text("#headers")
    assert "List-Unsubscribe-Post" in headers and "Subject" in headers
    assert "[config-placeholder]" in page.inner_text("#warnings")


def test_preview_follows_edits_errors_and_fixes(page, preview, project):
    issue = project / "issues" / "2024-03.yaml"
    page.goto(preview.url)
    _wait(page, PHONE_HAS, "Spotlight on New Alliance Program")

    _edit(issue, "Spotlight on New Alliance Program", "Spotlight on the Edited Headline")
    took = _wait(page, PHONE_HAS, "Spotlight on the Edited Headline")
    assert took < 2.0

    _edit(issue, "subject:", "subjct:")
    _wait(page, "() => { const e = document.getElementById('errors');"
                " return !!e && e.innerText.includes('subjct: unknown key'); }")
    errors = page.inner_text("#errors")
    assert "issues/2024-03.yaml:12:1: subjct: unknown key (did you mean 'subject'?)" in errors
    assert "issues/2024-03.yaml:7:1: subject: field required" in errors

    _edit(issue, "subjct:", "subject:")
    _wait(page, PHONE_HAS, "Spotlight on the Edited Headline")
    assert page.query_selector("#errors") is None


def test_preview_follows_layout_and_config_edits(page, preview, project):
    page.goto(preview.url)
    _wait(page, PHONE_HAS, "Spotlight on New Alliance Program")
    _edit(project / "layouts" / "default" / "_footer.mjml.j2",
          "{{ nl.name }} is {{ nl.description }}.", "{{ nl.name }} is the much-loved e-newsletter.")
    _wait(page, PHONE_HAS, "much-loved e-newsletter")
    _edit(project / "pbtp-mailer.toml", 'name = "Alliance PBTP News"', 'name = "PBTP Weekly"')
    _wait(page, PHONE_HAS, "PBTP Weekly")
    _edit(project / "pbtp-mailer.toml", 'name = "PBTP Weekly"', 'nme = "PBTP Weekly"')
    _wait(page, "() => !!document.getElementById('errors')")
    assert re.search(r"pbtp-mailer.toml:\d+:1: \[newsletter\]: 'name' is required",
                     page.inner_text("#errors"))


def test_preview_refuses_foreign_host_names(preview):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", preview.httpd.server_address[1], timeout=5)
    try:
        conn.request("GET", "/", headers={"Host": "attacker.example:80"})
        assert conn.getresponse().status == 403
    finally:
        conn.close()


@pytest.fixture()
def site(project):
    from click.testing import CliRunner

    from pbtp_mailer.cli import main

    result = CliRunner().invoke(main, ["archive", "--all", "-o", "site"])
    assert result.exit_code == 0, result.output
    return project / "site"


@pytest.mark.parametrize("width", [320, 375, 600, 1024])
def test_archive_pages_do_not_overflow(page, site, width):
    page.set_viewport_size({"width": width, "height": 900})
    for rel in ("index.html", "2024-03/index.html"):
        page.goto((site / rel).as_uri())
        result = page.evaluate(OVERFLOW_JS)
        assert result["scroll"] <= result["width"], (rel, result)
        assert result["wide"] == [], (rel, result)


def test_archive_index_links_work_in_the_browser(page, site):
    page.goto((site / "index.html").as_uri())
    page.click("text=Spotlight on New Alliance Program")
    page.wait_for_load_state()
    assert page.url.endswith("/site/2024-03/index.html")
    page.click("text=Newsletter archive")
    page.wait_for_load_state()
    assert page.url.endswith("/site/index.html")
