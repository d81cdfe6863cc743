"""A headless Chromium for tests (Debian's /usr/bin/chromium through Playwright).

Use it from a conftest or test module::

    from tests.support.browser import browser  # noqa: F401  (the fixture)

    def test_page(browser):
        page = browser.new_page()
        ...
        page.close()

The fixture is session-scoped (one Chromium for the whole run) and skips,
with the reason, only when the Chromium binary is missing. Never run
``playwright install``: the Debian package is the browser. ``$PBTP_CHROMIUM``
overrides the path. Only one ``sync_playwright()`` may be live at a time, so
prefer this fixture to starting another.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["CHROMIUM_ARGS", "chromium_path", "browser"]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_path() -> str | None:
    path = os.environ.get("PBTP_CHROMIUM", "/usr/bin/chromium")
    return path if Path(path).exists() else None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A launched Playwright ``Browser`` (closed at the end of the session)."""
    path = chromium_path()
    if path is None:
        pytest.skip("Chromium not found at /usr/bin/chromium (apt-get install chromium, "
                    "or set PBTP_CHROMIUM)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
