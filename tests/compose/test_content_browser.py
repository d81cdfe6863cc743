"""The image issue in Chromium: no overflow at 320 px, no layout shift when images load.

The images are served by a local HTTP server on 127.0.0.1 that holds every
answer until the test has measured the page without them.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.compose.content_issue import ISSUE_ID, write_issue
from tests.compose.test_chromium import OVERFLOW_JS
from tests.conftest import chromium_path

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(chromium_path() is None,
                       reason="Debian chromium is not installed (scripts/test.sh installs it)"),
]

BOXES_JS = """
() => [...document.body.querySelectorAll('*')].map(el => {
  const r = el.getBoundingClientRect();
  return [el.tagName, Math.round(r.x * 2) / 2, Math.round(r.y * 2) / 2,
          Math.round(r.width * 2) / 2, Math.round(r.height * 2) / 2];
})
"""
LOADED_JS = "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
PENDING_JS = "() => [...document.images].filter(i => !i.complete).length"


class HeldImages:
    """Serves ``files`` by name; every answer waits for ``release`` (at most 20 s)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.release = threading.Event()
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                name = self.path.rsplit("/", 1)[-1]
                outer.requests.append(name)
                outer.release.wait(20)
                data = outer.files.get(name)
                if data is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg" if name.endswith(".jpg")
                                 else "image/png")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/img/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HeldImages:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _local_only(route: Any) -> None:
    """Network only to 127.0.0.1: every other request (placeholder image hosts) is refused."""
    if route.request.url.startswith(("http://127.0.0.1", "about:", "data:")):
        route.continue_()
    else:
        route.abort()


@pytest.fixture(scope="module")
def built_issue(tmp_path_factory, config):
    from pbtp_mailer.compose.build import build_issue

    folder = tmp_path_factory.mktemp("content-browser")
    return build_issue(write_issue(folder), config, folder / "build")


@pytest.fixture()
def served(built_issue) -> Iterator[tuple[HeldImages, Path]]:
    folder = built_issue.folder
    files = {p.name: p.read_bytes() for p in folder.glob("*.png")}
    jpg = io.BytesIO()
    Image.new("RGB", (800, 600), (90, 90, 90)).save(jpg, "JPEG")
    files["muller.jpg"] = jpg.getvalue()
    with HeldImages(files) as held:
        yield held, folder


def _local(html: str, config, held: HeldImages) -> str:
    html = html.replace(f"{config.newsletter.archive_url}{ISSUE_ID}/", held.base)
    return html.replace("https://cdn.example.org/portraits/", held.base)


@pytest.mark.parametrize("width", [320, 600])
@pytest.mark.parametrize("which", ["email.html", "web.html"])
def test_no_overflow_and_no_layout_shift(browser, served, config, width, which):
    held, folder = served
    html = _local((folder / which).read_text(encoding="utf-8"), config, held)
    assert html.count(f'src="{held.base}') == 4
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        context.route("**/*", _local_only)
        page = context.new_page()
        page.set_content(html, wait_until="domcontentloaded")
        assert page.evaluate(PENDING_JS) == 4  # nothing loaded yet: boxes from attributes
        before = page.evaluate(BOXES_JS)
        held.release.set()
        page.wait_for_function(LOADED_JS, timeout=15_000)
        after = page.evaluate(BOXES_JS)
        overflow = page.evaluate(OVERFLOW_JS)
    finally:
        context.close()
    assert sorted(held.requests) == sorted(held.files)
    shifted = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert shifted == []
    assert overflow["scroll"] <= overflow["width"], overflow
    assert overflow["wide"] == [], overflow


@pytest.mark.parametrize("which", ["email.html", "web.html", "march"])
def test_axe_core_finds_no_violations(browser, built_issue, built, which):
    from tests.support.axe import axe_violations

    path = built.folder / "email.html" if which == "march" else built_issue.folder / which
    context = browser.new_context(viewport={"width": 600, "height": 900})
    try:
        context.route("**/*", _local_only)
        page = context.new_page()
        page.set_content(path.read_text(encoding="utf-8"))
        violations = axe_violations(page)
    finally:
        context.close()
    assert violations == []
