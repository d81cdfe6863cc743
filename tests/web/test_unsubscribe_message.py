"""End to end: a composed message carries the real per-recipient unsubscribe URLs
(List-Unsubscribe and the visible footer of both parts), and they work."""

from __future__ import annotations

import email
import email.policy

from pbtp_mailer.tokens import make_token, unsubscribe_urls

ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_message_links_unsubscribe(rendition, served, store, web_config) -> None:
    from pbtp_mailer.compose.message import MessageTemplate, Personal

    nl = web_config.newsletter
    ml = store.create_list("news")
    store.add_subscriber("news", "ann@example.org", name="Ann Lee")
    (rec,) = list(store.recipients("news"))
    token = make_token(web_config.secret(), rec.subscriber_id, rec.list_id)
    https, mailto = unsubscribe_urls(nl, token)
    raw = MessageTemplate(rendition, nl).render(Personal(
        email=rec.email, name=rec.name, unsubscribe_url=https, unsubscribe_mailto=mailto,
        attrs=rec.attrs))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_all("List-Unsubscribe") == [
        f"<https://news.example.org/pbtp/u/{token}>, "
        f"<mailto:unsubscribe@example.org?subject=unsubscribe%20{token}>"]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert https in text
    assert f'href="{https}"' in html
    # the same token, presented to the endpoint, unsubscribes exactly this membership
    path = https.removeprefix("https://news.example.org/pbtp")
    status, headers, _ = served.request("POST", path, ONE_CLICK, FORM)
    assert status == 200 and "location" not in headers
    assert store.is_suppressed("ann@example.org", ml.id)
