"""Webhooks over real HTTP (waitress), with real keys: good requests record, bad ones change nothing."""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pbtp_mailer.feedback import FeedbackSettings
from pbtp_mailer.feedback.webhooks import SnsVerifier, make_app
from tests.feedback.webhook_support import (
    TOPIC,
    SnsCA,
    mailgun_body,
    sendgrid_headers,
    sendgrid_keys,
    serve,
    ses_bounce,
    ses_complaint,
    sns_time,
)

MAILGUN_KEY = "key-" + "m" * 32
POSTMARK_PW = "pm-password-" + "p" * 20


class Hooks:
    def __init__(self, store, ca, sg_key, post, emails):
        self.store, self.ca, self.sg_key, self.post, self.emails = store, ca, sg_key, post, emails

    def state(self):
        """Everything a request could change: events, suppressions, nonces."""
        events = [(e.source, e.event_id, e.suppressed_as) for e in self.store.feedback.events()]
        sup = [self.store.subscriber(e).suppression for e in self.emails]
        return events, sup

    def sns(self, msg):
        return self.post("/feedback/ses", json.dumps(msg).encode(),
                         {"Content-Type": "text/plain", "x-amz-sns-message-type": msg["Type"]})


@pytest.fixture()
def hooks(fworld, tmp_path):
    emails = fworld.make_list(4)
    store = fworld.store()
    ca = SnsCA(tmp_path / "sns")
    sg_key, sg_pub = sendgrid_keys()
    settings = FeedbackSettings(ses_topic_arns=[TOPIC], postmark_user="pm",
                                sendgrid_public_key=sg_pub, mailgun_enabled=True)
    environ = {"PBTP_MAILER_POSTMARK_WEBHOOK_PASSWORD": POSTMARK_PW,
               "PBTP_MAILER_MAILGUN_SIGNING_KEY": MAILGUN_KEY}
    verifier = SnsVerifier([TOPIC], max_age=dt.timedelta(hours=1), fetch=ca.fetch)
    app = make_app(store, settings, environ, sns=verifier)
    try:
        with serve(app) as post:
            yield Hooks(store, ca, sg_key, post, emails)
    finally:
        ca.stop()


# -- SES / SNS -----------------------------------------------------------------

def test_ses_bounce_v1_and_complaint_v2(hooks):
    a, b = hooks.emails[:2]
    assert hooks.sns(hooks.ca.sign(ses_bounce(a), "1")) == (200, "ok: 1 new of 1\n")
    assert hooks.sns(hooks.ca.sign(ses_complaint(b), "2")) == (200, "ok: 1 new of 1\n")
    assert hooks.store.subscriber(a).suppression[0] == "bounced"
    assert hooks.store.subscriber(b).suppression[0] == "complained"
    # a transient bounce is soft: recorded, not suppressed; not-spam is nothing
    c = hooks.emails[2]
    assert hooks.sns(hooks.ca.sign(ses_bounce(c, permanent=False), "2"))[0] == 200
    assert hooks.sns(hooks.ca.sign(ses_complaint(c, "not-spam"), "2")) == (200, "ok: 0 new of 0\n")
    assert hooks.store.subscriber(c).suppression is None
    assert [e.kind for e in hooks.store.feedback.events(email=c)] == ["soft"]


def test_sns_subscription_confirmation_visits_subscribe_url(hooks):
    msg = hooks.ca.sign({"Type": "SubscriptionConfirmation", "MessageId": "m-sub-1",
                         "Token": "tok123", "TopicArn": TOPIC, "Message": "confirm please",
                         "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action="
                                         "ConfirmSubscription&TopicArn=x&Token=tok123",
                         "Timestamp": sns_time()}, "2")
    assert hooks.sns(msg) == (200, "ok: subscription confirmed\n")
    assert any("ConfirmSubscription" in v for v in hooks.ca.visits)


def _bad_sns(hooks):
    a = hooks.emails[0]
    good = hooks.ca.sign(ses_bounce(a), "2")
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tampered = dict(good, Message=good["Message"].replace("Permanent", "Transient"))
    old = hooks.ca.sign({**ses_bounce(a), "Timestamp": sns_time(
        dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))}, "2")
    evil = hooks.ca.sign({**ses_bounce(a), "SigningCertURL":
                          "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem"}, "2")
    plain_http = hooks.ca.sign({**ses_bounce(a), "SigningCertURL":
                                "http://sns.us-east-1.amazonaws.com/cert.pem"}, "2")
    other_topic = hooks.ca.sign({**ses_bounce(a), "TopicArn": TOPIC + "-other"}, "2")
    v3 = dict(good, SignatureVersion="3")
    return {
        "forged": (hooks.ca.sign(ses_bounce(a), "2", key=other_key), 403),
        "tampered": (tampered, 403),
        "expired": (old, 403),
        "evil cert host": (evil, 403),
        "http cert url": (plain_http, 403),
        "other topic": (other_topic, 403),
        "unknown version": (v3, 400),
        "no signature": ({k: v for k, v in good.items() if k != "Signature"}, 400),
    }


def test_bad_sns_requests_change_nothing(hooks):
    before = hooks.state()
    for name, (msg, status) in _bad_sns(hooks).items():
        got = hooks.sns(msg)
        assert got[0] == status, (name, got)
    assert hooks.post("/feedback/ses", b"{not json", {})[0] == 400
    assert hooks.post("/feedback/ses", b"x" * (300 * 1024), {})[0] == 413
    assert hooks.state() == before
    assert not any("evil" in v for v in hooks.ca.visits)


def test_sns_replay_is_refused(hooks):
    msg = hooks.ca.sign(ses_bounce(hooks.emails[0]), "1")
    assert hooks.sns(msg)[0] == 200
    before = hooks.state()
    assert hooks.sns(msg) == (409, "replayed request\n")
    assert hooks.state() == before


# -- Postmark ------------------------------------------------------------------

def _basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode(),
            "Content-Type": "application/json"}


def _pm_bounce(email, type_="HardBounce", id_=4323372036854775807):
    return json.dumps({"RecordType": "Bounce", "ID": id_, "Type": type_, "TypeCode": 1,
                       "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "Email": email,
                       "BouncedAt": "2024-03-01T14:00:05Z", "Description": "unknown user",
                       "Details": "smtp;550 5.1.1"}).encode()


def test_postmark_basic_auth(hooks):
    a, b = hooks.emails[:2]
    before = hooks.state()
    assert hooks.post("/feedback/postmark", _pm_bounce(a), _basic("pm", "wrong"))[0] == 401
    assert hooks.post("/feedback/postmark", _pm_bounce(a), {})[0] == 401
    assert hooks.post("/feedback/postmark", _pm_bounce(a), _basic("other", POSTMARK_PW))[0] == 401
    assert hooks.post("/feedback/postmark", b"[]", _basic("pm", POSTMARK_PW))[0] == 400
    assert hooks.state() == before
    assert hooks.post("/feedback/postmark", _pm_bounce(a), _basic("pm", POSTMARK_PW)) == (
        200, "ok: 1 new of 1\n")
    # Postmark retries on anything but 200: a duplicate is accepted and changes nothing
    mid = hooks.state()
    assert hooks.post("/feedback/postmark", _pm_bounce(a), _basic("pm", POSTMARK_PW)) == (
        200, "ok: 0 new of 1\n")
    assert hooks.state() == mid
    spam = json.dumps({"RecordType": "SpamComplaint", "ID": 77, "Type": "SpamComplaint",
                       "Email": b, "BouncedAt": "2024-03-01T15:00:00Z"}).encode()
    assert hooks.post("/feedback/postmark", spam, _basic("pm", POSTMARK_PW))[0] == 200
    assert hooks.store.subscriber(a).suppression[0] == "bounced"
    assert hooks.store.subscriber(b).suppression[0] == "complained"
    auto = _pm_bounce(hooks.emails[2], "AutoResponder", 78)
    assert hooks.post("/feedback/postmark", auto, _basic("pm", POSTMARK_PW)) == (
        200, "ok: 0 new of 0\n")


# -- SendGrid ------------------------------------------------------------------

def _sg_events(a, b):
    now = int(dt.datetime.now(dt.UTC).timestamp())
    return json.dumps([
        {"email": a, "timestamp": now, "event": "bounce", "type": "bounce", "status": "5.1.1",
         "reason": "550 5.1.1 unknown", "sg_event_id": secrets.token_hex(8),
         "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"},
        {"email": b, "timestamp": now, "event": "spamreport", "sg_event_id": secrets.token_hex(8)},
        {"email": b, "timestamp": now, "event": "delivered", "sg_event_id": secrets.token_hex(8)},
    ]).encode()


def test_sendgrid_signed_events(hooks):
    a, b = hooks.emails[:2]
    body = _sg_events(a, b)
    headers = sendgrid_headers(hooks.sg_key, body)
    assert hooks.post("/feedback/sendgrid", body, headers) == (200, "ok: 2 new of 2\n")
    assert hooks.store.subscriber(a).suppression[0] == "bounced"
    assert hooks.store.subscriber(b).suppression[0] == "complained"
    before = hooks.state()
    assert hooks.post("/feedback/sendgrid", body, headers)[0] == 409  # replayed
    assert hooks.state() == before


def test_bad_sendgrid_requests_change_nothing(hooks):
    from cryptography.hazmat.primitives.asymmetric import ec

    a, b = hooks.emails[:2]
    body = _sg_events(a, b)
    before = hooks.state()
    forger = ec.generate_private_key(ec.SECP256R1())
    old = int((dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).timestamp())
    cases = {
        "forged": (body, sendgrid_headers(forger, body), 403),
        "tampered": (body.replace(b"spamreport", b"unsubscribe"),
                     sendgrid_headers(hooks.sg_key, body), 403),
        "expired": (body, sendgrid_headers(hooks.sg_key, body, ts=old), 403),
        "unsigned": (body, {"Content-Type": "application/json"}, 401),
        "malformed": (b"{]", sendgrid_headers(hooks.sg_key, b"{]"), 400),
        "not a list": (b"{}", sendgrid_headers(hooks.sg_key, b"{}"), 400),
    }
    for name, (data, headers, status) in cases.items():
        assert hooks.post("/feedback/sendgrid", data, headers)[0] == status, name
    assert hooks.state() == before


# -- Mailgun -------------------------------------------------------------------

def _mg_event(email, event="failed", severity="permanent"):
    return {"event": event, "severity": severity, "recipient": email,
            "id": secrets.token_hex(11), "timestamp": dt.datetime.now(dt.UTC).timestamp(),
            "message": {"headers": {"message-id": "20240301.1@mg.example.org"}},
            "delivery-status": {"code": 550, "message": "5.1.1 no such user"}}


def test_mailgun_signed_events_and_replay(hooks):
    a, b = hooks.emails[:2]
    key = MAILGUN_KEY.encode()
    body = mailgun_body(key, _mg_event(a))
    assert hooks.post("/feedback/mailgun", body, {"Content-Type": "application/json"}) == (
        200, "ok: 1 new of 1\n")
    assert hooks.store.subscriber(a).suppression[0] == "bounced"
    before = hooks.state()
    assert hooks.post("/feedback/mailgun", body, {})[0] == 409  # same token again
    # a captured request edited (Mailgun signs only timestamp+token) is still a replay
    edited = body.replace(b'"failed"', b'"complained"')
    assert hooks.post("/feedback/mailgun", edited, {})[0] == 409
    assert hooks.state() == before
    complaint = mailgun_body(key, _mg_event(b, "complained"))
    assert hooks.post("/feedback/mailgun", complaint, {})[0] == 200
    assert hooks.state() != before
    assert hooks.store.subscriber(b).suppression[0] == "complained"


def test_bad_mailgun_requests_change_nothing(hooks):
    a = hooks.emails[0]
    key = MAILGUN_KEY.encode()
    before = hooks.state()
    old = int((dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6)).timestamp())
    forged = mailgun_body(b"key-not-the-right-one-0000000000", _mg_event(a))
    signed_junk = json.loads(mailgun_body(key, _mg_event(a)))
    signed_junk["event-data"] = "junk"
    cases = {
        "forged": (forged, 403),
        "expired": (mailgun_body(key, _mg_event(a), ts=old), 403),
        "malformed": (b"not json at all", 400),
        "no signature": (json.dumps({"event-data": _mg_event(a)}).encode(), 400),
        "bad event-data": (json.dumps(signed_junk).encode(), 400),
        "oversized": (b"{" + b" " * (300 * 1024) + b"}", 413),
    }
    for name, (data, status) in cases.items():
        assert hooks.post("/feedback/mailgun", data, {})[0] == status, name
    assert hooks.state() == before


def test_unconfigured_and_wrong_method(fworld):
    store = fworld.store()
    app = make_app(store, FeedbackSettings(), {})
    with serve(app) as post:
        for name in ("ses", "postmark", "sendgrid", "mailgun", "other"):
            assert post(f"/feedback/{name}", b"{}", {})[0] == 404
    import http.client

    settings = FeedbackSettings(mailgun_enabled=True)
    app = make_app(store, settings, {"PBTP_MAILER_MAILGUN_SIGNING_KEY": MAILGUN_KEY})
    with serve(app) as post:
        conn = http.client.HTTPConnection("127.0.0.1", post.port, timeout=10)
        conn.request("GET", "/feedback/mailgun")
        assert conn.getresponse().status == 405
        conn.close()
