"""The whole reader journey in Chromium: sign up, confirm, manage; axe-core and 320 px on every page."""

from __future__ import annotations

import pytest

from pbtp_mailer.tokens import make_token
from tests.store.conftest import SECRET
from tests.support.axe import axe_violations

pytestmark = pytest.mark.slow


def _check(page) -> None:
    """0 axe violations in light and dark, and no sideways scrolling at 320 and 1024 px."""
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        assert axe_violations(page) == [], (page.url, scheme)
    for width in (320, 1024):
        page.set_viewport_size({"width": width, "height": 700})
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (page.url, width, overflow)
    page.emulate_media(color_scheme="light")


def _statuses(site, email: str) -> dict[str, str]:
    return {s.list.name: s.status for s in site.store.signups.statuses(email)[1]}


def test_sign_up_confirm_and_manage(browser, site) -> None:
    site.public("news", "Monthly news from the program, with a long description that wraps "
                        "on a narrow phone screen")
    site.public("events", "Meetings and webinars")
    context = browser.new_context(bypass_csp=True, viewport={"width": 320, "height": 700})
    try:
        page = context.new_page()
        assert page.goto(f"{site.http.base}/subscribe/news").status == 200
        assert page.title() == "Subscribe to news – Alliance PBTP News"
        _check(page)
        page.get_by_label("E-mail address").fill("ann.reader@example.org")
        page.get_by_label("Name (optional)").fill("Ann Reader")
        with page.expect_navigation():
            page.get_by_role("button", name="Subscribe").click()
        assert page.get_by_role("heading", level=1).inner_text() == "Check your inbox"
        _check(page)

        (mail,) = site.mails()
        assert mail["To"] == "ann.reader@example.org"
        (link,) = site.links(mail)
        assert page.goto(link).status == 200
        _check(page)
        assert not list(site.store.recipients("news"))  # opening the link is not enough
        with page.expect_navigation():
            page.get_by_role("button", name="Confirm").click()
        assert page.get_by_role("heading", level=1).inner_text() == "You are subscribed"
        _check(page)
        assert [r.email for r in site.store.recipients("news")] == ["ann.reader@example.org"]
        (record,) = site.store.signups.consents("ann.reader@example.org")
        assert (record.list_name, record.how) == ("news", "form")

        sid = site.store.signups.subscriber_id("ann.reader@example.org")
        assert sid is not None
        token = make_token(SECRET.encode(), sid, site.store.get_list("news").id)
        assert page.goto(f"{site.http.base}/preferences/{token}").status == 200
        _check(page)
        news = page.get_by_role("checkbox", name="news")
        events = page.get_by_role("checkbox", name="events")
        assert news.is_checked() and not events.is_checked()
        news.uncheck()
        events.check()
        with page.expect_navigation():
            page.get_by_role("button", name="Save").click()
        assert "You left: news." in page.get_by_role("status").inner_text()
        _check(page)
        assert _statuses(site, "ann.reader@example.org") == {"events": "none",
                                                             "news": "unsubscribed"}
        (link,) = site.links(site.mails()[1])
        page.goto(link)
        with page.expect_navigation():
            page.get_by_role("button", name="Confirm").click()
        assert _statuses(site, "ann.reader@example.org") == {"events": "subscribed",
                                                             "news": "unsubscribed"}

        assert page.goto(link).status == 410  # used
        _check(page)
        assert page.goto(f"{site.http.base}/subscribe/nope").status == 404
        _check(page)
    finally:
        context.close()


def test_pages_work_without_script_and_by_keyboard(browser, site) -> None:
    site.public("news")
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{site.http.base}/subscribe/news")
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.id") == "email"
        page.keyboard.type("kim@example.org")
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")  # the honeypot is skipped
        assert page.evaluate("() => document.activeElement.tagName") == "BUTTON"
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert len(site.mails()) == 1
    finally:
        context.close()


def test_axe_check_can_fail(browser) -> None:
    """The vendored axe-core really runs: a page with a nameless button and grey text fails."""
    page = browser.new_page()
    try:
        page.set_content('<html lang="en"><title>t</title><main><button></button>'
                         '<p style="color:#bbb;background:#fff">faint</p></main></html>')
        assert {v for v, _ in axe_violations(page)} == {"button-name", "color-contrast"}
    finally:
        page.close()
