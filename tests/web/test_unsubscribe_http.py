"""RFC 8058 one-click unsubscribe over real HTTP (waitress on 127.0.0.1)."""

from __future__ import annotations

import pytest

from pbtp_mailer.store import Store

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
ONE_CLICK = b"List-Unsubscribe=One-Click"


def multipart(value: bytes = b"One-Click", name: str = "List-Unsubscribe",
              boundary: str = "----pbtpBoundary7MA4YWxk") -> tuple[bytes, dict[str, str]]:
    body = (f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{name}"\r\n\r\n').encode() + value + (
        f"\r\n--{boundary}--\r\n").encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def history(store: Store) -> list[tuple[str, str]]:
    return [(h.status, h.source) for h in store.subscriber("ann@example.org").history]


def test_post_urlencoded_unsubscribes_with_200_and_no_redirect(served, store, member) -> None:
    token, list_id = member
    status, headers, body = served.request("POST", f"/u/{token}", ONE_CLICK, FORM)
    assert status == 200
    assert "location" not in headers
    assert "set-cookie" not in headers
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert b"You are unsubscribed" in body
    assert store.is_suppressed("ann@example.org", list_id)
    assert list(store.recipients("news")) == []
    assert history(store) == [("subscribed", "cli"), ("unsubscribed", "one-click")]


def test_post_multipart_unsubscribes(served, store, member) -> None:
    token, list_id = member
    body, headers = multipart()
    status, resp_headers, _ = served.request("POST", f"/u/{token}", body, headers)
    assert status == 200 and "location" not in resp_headers
    assert store.is_suppressed("ann@example.org", list_id)


def test_post_is_idempotent(served, store, member) -> None:
    token, _ = member
    for _ in range(3):
        status, _, _ = served.request("POST", f"/u/{token}", ONE_CLICK, FORM)
        assert status == 200
    assert history(store) == [("subscribed", "cli"), ("unsubscribed", "one-click")]


def test_prefixed_path_behind_a_proxy(served, store, member) -> None:
    token, list_id = member
    status, _, _ = served.request("POST", f"/pbtp/u/{token}", ONE_CLICK, FORM)
    assert status == 200
    assert store.is_suppressed("ann@example.org", list_id)


def test_get_shows_a_page_and_never_unsubscribes(served, store, member) -> None:
    token, list_id = member
    for _ in range(2):
        status, headers, body = served.request("GET", f"/u/{token}")
        assert status == 200
    page = body.decode()
    assert '<html lang="en" dir="ltr">' in page
    assert "<title>Unsubscribe from news – Alliance PBTP News</title>" in page
    assert page.count("<form") == 1 and '<form method="post"' in page
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in page
    assert '<button type="submit">Unsubscribe from news</button>' in page
    assert "a*@example.org" not in page and "ann@example.org" not in page
    assert "a**@example.org" in page
    assert headers["cache-control"] == "no-store"
    assert not store.is_suppressed("ann@example.org", list_id)
    status, headers, body = served.request("HEAD", f"/u/{token}")
    assert (status, body) == (200, b"")
    assert not store.is_suppressed("ann@example.org", list_id)


@pytest.mark.parametrize("kind", ["forged", "truncated", "unknown", "garbage", "empty"])
def test_bad_tokens_get_404_and_change_nothing(served, store, member, web_config,
                                               kind) -> None:
    from pbtp_mailer.tokens import make_token

    token, list_id = member
    bad = {
        "forged": token[:-2] + ("AA" if token[-2:] != "AA" else "BB"),
        "truncated": token[:20],
        "unknown": make_token(web_config.secret(), 999, list_id),
        "garbage": "%00%0d%0a../../etc/passwd",
        "empty": "",
    }[kind]
    for method, body, headers in (("POST", ONE_CLICK, FORM), ("GET", None, {})):
        status, resp_headers, _ = served.request(method, f"/u/{bad}", body, headers)
        assert status == 404, (kind, method)
        assert "location" not in resp_headers
    assert not store.is_suppressed("ann@example.org", list_id)
    assert history(store) == [("subscribed", "cli")]


@pytest.mark.parametrize(("body", "headers"), [
    (b"", FORM),
    (b"List-Unsubscribe=Yes", FORM),
    (b"foo=bar", FORM),
    (b"List-Unsubscribe=One-Click&List-Unsubscribe=One-Click", FORM),
    (ONE_CLICK, {"Content-Type": "text/plain"}),
    (ONE_CLICK, {}),
    (b'{"List-Unsubscribe": "One-Click"}', {"Content-Type": "application/json"}),
    multipart(b"Nope"),
    multipart(name="Other"),
    (b"garbage", {"Content-Type": "multipart/form-data; boundary=x"}),
    (b"garbage", {"Content-Type": "multipart/form-data"}),
    (b"\xff\xfe", FORM),
], ids=["empty", "wrong-value", "other-field", "twice", "text-plain", "no-type", "json",
        "multipart-wrong-value", "multipart-other-name", "multipart-garbage",
        "multipart-no-boundary", "binary"])
def test_other_bodies_get_400_and_change_nothing(served, store, member, body, headers) -> None:
    token, list_id = member
    status, resp_headers, _ = served.request("POST", f"/u/{token}", body, headers)
    assert status == 400
    assert not store.is_suppressed("ann@example.org", list_id)


def test_too_large_body_and_other_methods(served, store, member) -> None:
    token, list_id = member
    status, _, _ = served.request("POST", f"/u/{token}", b"x" * 70_000, FORM)
    assert status == 413
    status, headers, _ = served.request("PUT", f"/u/{token}", ONE_CLICK, FORM)
    assert status == 405 and headers["allow"] == "GET, HEAD, POST"
    status, _, _ = served.request("GET", "/")
    assert status == 404
    assert not store.is_suppressed("ann@example.org", list_id)


def test_no_cookie_or_auth_needed_and_no_warnings_logged(served, store, member, caplog) -> None:
    token, list_id = member
    status, _, _ = served.request("POST", f"/u/{token}", ONE_CLICK,
                                  {**FORM, "Cookie": "", "Authorization": ""})
    assert status == 200
    assert "ann@example.org" not in caplog.text


def test_get_after_unsubscribe_says_so(served, store, member) -> None:
    token, _ = member
    served.request("POST", f"/u/{token}", ONE_CLICK, FORM)
    status, _, body = served.request("GET", f"/u/{token}")
    assert status == 200
    assert b"<h1>You are unsubscribed</h1>" in body and b"<form" not in body


def test_removed_member_can_still_unsubscribe(served, store, member) -> None:
    token, list_id = member
    store.remove_subscriber("news", "ann@example.org")
    status, _, _ = served.request("POST", f"/u/{token}", ONE_CLICK, FORM)
    assert status == 200
    assert store.is_suppressed("ann@example.org", list_id)
    with pytest.raises(Exception, match="unsubscribed from 'news'"):
        store.add_subscriber("news", "ann@example.org")


def test_deleted_list_gives_404(served, store, member) -> None:
    token, _ = member
    store.delete_list("news")
    status, _, _ = served.request("POST", f"/u/{token}", ONE_CLICK, FORM)
    assert status == 404


def test_database_trouble_gives_503_not_a_traceback(served, store, member) -> None:
    from sqlalchemy import text

    token, _ = member
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE lists RENAME TO lists_away"))
    try:
        status, _, body = served.request("POST", f"/u/{token}", ONE_CLICK, FORM)
        assert status == 503
        assert b"Please try again later" in body
    finally:
        with store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE lists_away RENAME TO lists"))
