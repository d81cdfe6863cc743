"""The GET page in a real headless Chromium: accessible, and its one button works."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_button_unsubscribes_in_chromium(browser, served, store, member) -> None:
    token, list_id = member
    context = browser.new_context(java_script_enabled=False)  # the page needs no script
    try:
        page = context.new_page()
        response = page.goto(f"{served.base}/u/{token}")
        assert response is not None and response.status == 200
        assert page.title() == "Unsubscribe from news – Alliance PBTP News"
        assert page.locator("html").get_attribute("lang") == "en"
        button = page.get_by_role("button", name="Unsubscribe from news")
        assert button.count() == 1
        assert not store.is_suppressed("ann@example.org", list_id)  # the GET changed nothing
        with page.expect_navigation():
            button.click()
        assert page.get_by_role("heading", level=1).inner_text() == "You are unsubscribed"
        assert page.get_by_role("status").inner_text().startswith(
            "Alliance PBTP News will no longer send news to a**@example.org")
        assert page.url == f"{served.base}/u/{token}"  # answered in place, no redirect
        assert store.is_suppressed("ann@example.org", list_id)
        assert [(h.status, h.source) for h in store.subscriber("ann@example.org").history] == [
            ("subscribed", "cli"), ("unsubscribed", "one-click")]
    finally:
        context.close()


def test_keyboard_only(browser, served, store, member) -> None:
    token, list_id = member
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{served.base}/u/{token}")
        page.keyboard.press("Tab")
        focused = page.evaluate("() => document.activeElement.tagName")
        assert focused == "BUTTON"
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert store.is_suppressed("ann@example.org", list_id)
    finally:
        context.close()
