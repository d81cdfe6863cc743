"""The preference page over real HTTP: leave at once, join by confirmation mail."""

from __future__ import annotations

import pytest

from pbtp_mailer.tokens import make_token
from tests.store.conftest import SECRET
from tests.subscribe.helpers import confirm, form_token, post


@pytest.fixture
def site_extra() -> str:
    return "record_ip = true\n"


def _prefs_path(site, email: str, list_name: str) -> str:
    sid = site.store.signups.subscriber_id(email)
    assert sid is not None
    return f"/preferences/{make_token(SECRET.encode(), sid, site.store.get_list(list_name).id)}"


def _statuses(site, email: str) -> dict[str, str]:
    return {s.list.name: s.status for s in site.store.signups.statuses(email)[1]}


def test_leave_one_join_another(site) -> None:
    site.public("news", "Monthly news")
    site.public("events", "Meetings")
    site.store.create_list("internal")  # private: never shown
    site.store.add_subscriber("news", "ann@example.org", name="Ann")
    path = _prefs_path(site, "ann@example.org", "news")

    status, headers, body = site.http.request("GET", path)
    assert status == 200 and headers["cache-control"] == "no-store"
    page = body.decode()
    assert 'value="news" checked' in page and 'value="events" aria' in page
    assert "internal" not in page and 'value="Ann"' in page

    status, _, body = post(site.http, path, [("form_token", form_token(body)),
                                             ("name", "Ann B."), ("list", "events")])
    assert status == 200 and b"You left: news." in body
    assert _statuses(site, "ann@example.org") == {"events": "none", "news": "unsubscribed"}
    assert site.store.subscriber("ann@example.org").name == "Ann B."
    (mail,) = site.mails()
    (link,) = site.links(mail)
    status, _, body = confirm(site, site.path(link))
    assert status == 200
    assert _statuses(site, "ann@example.org") == {"events": "subscribed", "news": "unsubscribed"}
    records = site.store.signups.consents("ann@example.org")
    assert [(r.list_name, r.how) for r in records] == [("news", "admin"), ("events", "preferences")]
    assert records[1].ip == "127.0.0.1"  # record_ip = true here


def test_coming_back_after_a_bounce_needs_confirmation(site) -> None:
    site.public("news")
    site.store.add_subscriber("news", "ann@example.org")
    site.store.suppress("ann@example.org", "bounced", source="dispatch")
    path = _prefs_path(site, "ann@example.org", "news")
    _, _, body = site.http.request("GET", path)
    assert b"mail to you bounced" in body
    post(site.http, path, [("form_token", form_token(body)), ("list", "news")])
    assert not list(site.store.recipients("news"))  # not before the confirmation
    (link,) = site.links(site.mails()[0])
    confirm(site, site.path(link))
    assert [r.email for r in site.store.recipients("news")] == ["ann@example.org"]


def test_bad_preference_links(site) -> None:
    site.public("news")
    assert site.http.request("GET", "/preferences/" + "A" * 32)[0] == 404
    assert site.http.request("GET", "/preferences/short")[0] == 404
    site.store.add_subscriber("news", "ann@example.org")
    path = _prefs_path(site, "ann@example.org", "news")
    status, _, _ = post(site.http, path, [("list", "news")])
    assert status == 403
    assert [r.email for r in site.store.recipients("news")] == ["ann@example.org"]
