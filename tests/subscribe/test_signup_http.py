"""Sign-up and confirmation over real HTTP (waitress), with real mail (aiosmtpd)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pbtp_mailer.subscribe.tokens import make_confirm_token
from tests.store.conftest import SECRET
from tests.subscribe.helpers import confirm, form_token, post, sign_up


def _active(site, email: str, list_name: str) -> bool:
    return any(r.email == email for r in site.store.recipients(list_name))


def test_double_opt_in(site) -> None:
    site.public("news", "Monthly news")
    status, headers, body = sign_up(site, "news", "Ann@Example.org", name="Ann")
    assert status == 200 and b"Check your inbox" in body
    assert headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    (mail,) = site.mails()
    assert mail["To"] == "Ann@example.org"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail.get_content_type() == "multipart/alternative"
    (link,) = site.links(mail)
    assert link.startswith(site.http.base + "/confirm/")
    assert not _active(site, "Ann@example.org", "news")  # pending only

    status, _, body = site.http.request("GET", site.path(link))  # a link scanner
    assert status == 200 and b">Confirm</button>" in body
    assert not _active(site, "Ann@example.org", "news")

    status, _, body = confirm(site, site.path(link))
    assert status == 200 and b"You are subscribed" in body
    assert _active(site, "Ann@example.org", "news")
    (record,) = site.store.signups.consents("ann@example.org")
    assert (record.list_name, record.how, record.wording_version) == ("news", "form", 1)
    assert record.wording is not None and record.wording.startswith("I want to receive")
    assert record.ip is None and record.user_agent is None  # record_ip is off
    assert record.confirmed_at >= record.requested_at
    assert site.store.subscriber("ann@example.org").name == "Ann"

    status, _, body = site.http.request("GET", site.path(link))  # reused
    assert status == 410 and b"already used" in body


def test_post_without_form_token_is_refused(site) -> None:
    site.public("news")
    status, _, _ = post(site.http, "/subscribe/news", {"email": "ann@example.org"})
    assert status == 403
    status, _, body = site.http.request("GET", "/subscribe/news")
    token = form_token(body)
    status, _, _ = post(site.http, "/subscribe/news",
                        {"form_token": token, "email": "ann@example.org"},
                        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert status == 403
    status, _, _ = post(site.http, "/subscribe/news",
                        {"form_token": token, "email": "ann@example.org"},
                        {"Origin": "https://evil.example"})
    assert status == 403
    assert site.mails() == []


def test_form_token_of_another_page_is_refused(site) -> None:
    site.public("news")
    site.public("events")
    _, _, body = site.http.request("GET", "/subscribe/events")
    status, _, _ = post(site.http, "/subscribe/news",
                        {"form_token": form_token(body), "email": "ann@example.org"})
    assert status == 403 and site.mails() == []


def test_private_or_unknown_list_is_404(site) -> None:
    site.store.create_list("internal")
    for path in ("/subscribe/internal", "/subscribe/nope"):
        status, headers, body = site.http.request("GET", path)
        assert status == 404 and b"no public list" in body
        assert headers["cache-control"] == "no-store"
    site.store.signups.set_public("internal", True)
    assert site.http.request("GET", "/subscribe/internal")[0] == 200
    site.store.signups.set_public("internal", False)
    assert site.http.request("GET", "/subscribe/internal")[0] == 404


def test_honeypot_sends_nothing(site) -> None:
    site.public("news")
    status, _, body = sign_up(site, "news", "ann@example.org", website="http://spam.example")
    assert status == 200 and b"Check your inbox" in body  # the same answer
    assert site.mails() == []
    assert site.store.export_address("ann@example.org") is None


def test_ten_sign_ups_send_at_most_three_mails(site) -> None:
    site.public("news")
    for _ in range(10):
        status, _, body = sign_up(site, "news", "ann@example.org")
        assert status == 200 and b"Check your inbox" in body
    assert len(site.mails()) == 3


def test_known_address_gets_a_manage_mail_and_the_same_page(site) -> None:
    site.public("news")
    site.store.add_subscriber("news", "bob@example.org")
    _, _, unknown = sign_up(site, "news", "ann@example.org")
    _, _, known = sign_up(site, "news", "bob@example.org")
    assert unknown == known  # the page says nothing about the address
    ann, bob = site.mails()
    assert "Please confirm" in ann["Subject"]
    assert "already subscribed" in bob["Subject"]
    (manage,) = site.links(bob)
    assert "/preferences/" in manage
    assert site.http.request("GET", site.path(manage))[0] == 200


def test_bad_address_rerenders_the_form(site) -> None:
    site.public("news")
    status, _, body = sign_up(site, "news", "not an address")
    assert status == 400 and b'role="alert"' in body and b'aria-invalid="true"' in body
    assert site.mails() == []


def test_body_size_limit(site) -> None:
    site.public("news")
    _, _, body = site.http.request("GET", "/subscribe/news")
    status, _, _ = post(site.http, "/subscribe/news",
                        {"form_token": form_token(body), "email": "a@example.org",
                         "name": "x" * 20_000})
    assert status == 413 and site.mails() == []


def _link_tokens(site):
    site.public("news")
    other = site.public("events")
    sign_up(site, "news", "ann@example.org")
    (link,) = site.links(site.mails()[0])
    token = link.rpartition("/")[2]
    return token, other


def test_forged_expired_and_other_list_tokens_change_nothing(site) -> None:
    token, other = _link_tokens(site)
    p = site.store.signups.pending(1)
    assert p is not None
    secret = SECRET.encode()
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    expired = make_confirm_token(secret, p.id, p.list.id, datetime.now(UTC) - timedelta(days=1))
    other_list = make_confirm_token(secret, p.id, other.id, p.expires_at)
    wrong_key = make_confirm_token(b"another-secret-0123456789", p.id, p.list.id, p.expires_at)
    for bad, code in ((forged, 404), (expired, 410), (other_list, 404), (wrong_key, 404),
                      ("x", 404)):
        status, headers, body = site.http.request("GET", f"/confirm/{bad}")
        assert status == code, (bad, status)
        assert headers["cache-control"] == "no-store"
        _, _, page = site.http.request("GET", f"/confirm/{token}")
        status, _, _ = post(site.http, f"/confirm/{bad}", {"form_token": form_token(page)})
        assert status in (403, code)  # a form token belongs to its own link
    assert not list(site.store.recipients("news"))
    assert site.store.signups.consents("ann@example.org") == []


def test_expired_request_in_store(site) -> None:
    token, _ = _link_tokens(site)
    # the row's own expiry counts too, whatever the token says
    from sqlalchemy import update

    from pbtp_mailer.store.subscribe_schema import signup_requests

    with site.store.engine.begin() as conn:
        conn.execute(update(signup_requests).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert site.http.request("GET", f"/confirm/{token}")[0] == 410
    assert not list(site.store.recipients("news"))


def test_unsubscribe_post_stays_token_free(site) -> None:
    from pbtp_mailer.tokens import make_token

    ml = site.public("news")
    site.store.add_subscriber("news", "ann@example.org")
    sid = site.store.signups.subscriber_id("ann@example.org")
    assert sid is not None
    token = make_token(SECRET.encode(), sid, ml.id)
    status, _, _ = site.http.request(
        "POST", f"/u/{token}", b"List-Unsubscribe=One-Click",
        {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200
    assert not list(site.store.recipients("news"))
