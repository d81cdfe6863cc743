"""Provider specifics against the local fakes: batches, partial failures, 429, 5xx, timeouts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from pbtp_mailer.errors import ConfigError, SendPermanentError, SendTransientError
from pbtp_mailer.senders._http import retry_after_seconds
from pbtp_mailer.senders.base import Outgoing, Sender, SenderSpec, Status
from pbtp_mailer.senders.registry import build_sender
from tests.senders.conftest import API_SECRET, FROM, make_message, outgoing
from tests.support.httpfake import SES_ACCESS_KEY, FakeAPI

ENV = {"POSTMARK_SERVER_TOKEN": API_SECRET, "SENDGRID_API_KEY": API_SECRET,
       "MAILGUN_API_KEY": API_SECRET, "AWS_SECRET_ACCESS_KEY": API_SECRET,
       "AWS_ACCESS_KEY_ID": SES_ACCESS_KEY}
EXTRA: dict[str, dict[str, Any]] = {"mailgun": {"domain": "mg.example.org"},
                                    "ses": {"region": "eu-west-1"}}
KINDS = ["postmark", "sendgrid", "mailgun", "ses"]


@pytest.fixture(params=KINDS)
def api(request: pytest.FixtureRequest) -> Iterator[FakeAPI]:
    with FakeAPI(request.param, secret=API_SECRET) as fake:
        yield fake


def make(api: FakeAPI, **options: Any) -> Sender:
    opts = {"base_url": api.base_url, "timeout": 5, **EXTRA.get(api.provider, {}), **options}
    return build_sender(SenderSpec(api.provider, api.provider, opts, ENV))


def test_429_is_transient_with_retry_after(api: FakeAPI) -> None:
    api.script.append((429, {"Retry-After": "17", "Content-Type": "application/json"},
                       b'{"message": "slow down"}'))
    with make(api) as sender:
        with pytest.raises(SendTransientError) as info:
            sender.send([outgoing()])
        assert info.value.code == 429 and info.value.retry_after == 17.0
        assert sender.send([outgoing()])[0].ok  # the next call goes through


def test_5xx_is_transient(api: FakeAPI) -> None:
    api.script.append((503, {"Content-Type": "text/plain"}, b"maintenance"))
    with make(api) as sender, pytest.raises(SendTransientError) as info:
        sender.send([outgoing()])
    assert info.value.code == 503 and api.provider in str(info.value)


def test_timeout_is_transient_per_recipient(api: FakeAPI) -> None:
    api.delay = 1.5
    with make(api, timeout=0.3) as sender:
        (r,) = sender.send([outgoing()])
    assert r.status is Status.TRANSIENT and "may have been accepted" in r.text


def test_missing_secret_names_the_variable(api: FakeAPI) -> None:
    opts = {"base_url": api.base_url, **EXTRA.get(api.provider, {})}
    sender = build_sender(SenderSpec(api.provider, api.provider, opts, {}))
    with pytest.raises(SendPermanentError) as info:
        sender.open()
    assert "not set" in str(info.value) and api.requests == 0


def test_connections_are_reused(api: FakeAPI) -> None:
    with make(api, concurrency=2) as sender:
        for _ in range(3):
            assert all(r.ok for r in sender.send([outgoing(), outgoing()]))
    assert api.requests == (6 if api.provider != "postmark" else 3)


def test_injectable_transport() -> None:
    import httpx

    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, headers={"X-Message-Id": "mock-1"})

    spec = SenderSpec("sg", "sendgrid", {"transport": httpx.MockTransport(handler)},
                      {"SENDGRID_API_KEY": "k"})
    with build_sender(spec) as sender:
        (r,) = sender.send([outgoing()])
    assert r.ok and r.provider_id == "mock-1"
    assert str(seen[0].url) == "https://api.sendgrid.com/v3/mail/send"
    assert seen[0].headers["authorization"] == "Bearer k"


# -- Postmark ------------------------------------------------------------------


def test_postmark_batches_of_500_with_partial_failures() -> None:
    with FakeAPI("postmark", secret=API_SECRET) as api:
        api.reject = {"r3@example.net": "x", "r600@example.net": "x"}
        messages = [outgoing(f"r{i}@example.net") for i in range(1200)]
        with make(api) as sender:
            assert sender.batch_size == 500
            results = sender.send(messages)
        assert api.requests == 3 and api.problems == []
        bad = [r for r in results if not r.ok]
        assert [(r.recipient, r.code, r.status) for r in bad] == [
            ("r3@example.net", 406, Status.PERMANENT), ("r600@example.net", 406,
                                                        Status.PERMANENT)]
        assert [r.recipient for r in results] == [f"r{i}@example.net" for i in range(1200)]


def test_postmark_sends_list_headers_and_broadcast_stream() -> None:
    import json

    import httpx

    bodies = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=[{"ErrorCode": 0, "Message": "OK", "MessageID": "id1",
                                          "To": "reader@example.net"}])

    spec = SenderSpec("pm", "postmark", {"transport": httpx.MockTransport(handler)},
                      {"POSTMARK_SERVER_TOKEN": "t"})
    with build_sender(spec) as sender:
        assert sender.send([outgoing()])[0].provider_id == "id1"
    (item,) = bodies[0]
    headers = {h["Name"]: h["Value"] for h in item["Headers"]}
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "List-Id" in headers and "Date" not in headers
    assert item["MessageStream"] == "broadcast" and item["TrackLinks"] == "None"


def test_postmark_account_error_in_batch_raises() -> None:
    import json

    with FakeAPI("postmark", secret=API_SECRET) as api:
        api.script.append((200, {"Content-Type": "application/json"}, json.dumps(
            [{"ErrorCode": 405, "Message": "Not allowed to send: out of credits"}]).encode()))
        with make(api) as sender, pytest.raises(SendPermanentError, match="405"):
            sender.send([outgoing()])


def test_postmark_invalid_request_rejects_the_messages_not_the_recipients() -> None:
    import json

    with FakeAPI("postmark", secret=API_SECRET) as api:
        api.script.append((422, {"Content-Type": "application/json"}, json.dumps(
            {"ErrorCode": 300, "Message": "Invalid email request"}).encode()))
        with make(api) as sender:
            results = sender.send([outgoing("a@example.net"), outgoing("b@example.net")])
    assert [(r.status, r.code) for r in results] == [(Status.REJECTED, 422)] * 2
    assert "300: Invalid email request" in results[0].text


def test_postmark_too_many_recipients_per_message() -> None:
    with FakeAPI("postmark", secret=API_SECRET) as api:
        msg = Outgoing(FROM, tuple(f"r{i}@example.net" for i in range(51)), make_message())
        with make(api) as sender:
            results = sender.send([msg, outgoing()])
    assert {r.status for r in results[:51]} == {Status.PERMANENT}
    assert results[51].ok


# -- SendGrid, Mailgun, SES ------------------------------------------------------


def test_sendgrid_rate_limit_reset_header() -> None:
    reset = str(int(time.time()) + 30)
    assert 28 <= (retry_after_seconds({"x-ratelimit-reset": reset}) or 0) <= 31
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({}) is None


def test_mailgun_unknown_domain_is_permanent_for_the_batch() -> None:
    with FakeAPI("mailgun", secret=API_SECRET) as api:
        with make(api, domain="other.example.org") as sender:
            with pytest.raises(SendPermanentError, match="404 — domain 'other.example.org'"):
                sender.send([outgoing()])


def test_mailgun_needs_a_domain() -> None:
    with pytest.raises(ConfigError, match="'domain' is required"):
        build_sender(SenderSpec("mg", "mailgun", {}, ENV))


def test_mailgun_sends_our_mime_untouched() -> None:
    with FakeAPI("mailgun", secret=API_SECRET) as api:
        msg = outgoing()
        with make(api) as sender:
            assert sender.send([msg])[0].ok
        assert api.deliveries[0].raw == msg.data


@pytest.mark.parametrize(("error", "status", "exc"), [
    ("MessageRejected", 400, None),
    ("TooManyRequestsException", 429, SendTransientError),
    ("LimitExceededException", 400, SendTransientError),
    ("SendingPausedException", 400, SendPermanentError),
])
def test_ses_errors(error: str, status: int, exc: type[Exception] | None) -> None:
    with FakeAPI("ses", secret=API_SECRET) as api:
        api.script.append((status, {"x-amzn-ErrorType": f"{error}:http://internal",
                                    "Content-Type": "application/json"},
                           b'{"message": "scripted"}'))
        with make(api) as sender:
            if exc is None:  # the message refused as such: nobody's address is at fault
                (r,) = sender.send([outgoing()])
                assert r.status is Status.REJECTED and error in r.text
            else:
                with pytest.raises(exc, match=error):
                    sender.send([outgoing()])


def test_ses_raw_keeps_our_bytes_and_is_sigv4_signed() -> None:
    with FakeAPI("ses", secret=API_SECRET) as api:
        msg = outgoing()
        with make(api) as sender:
            assert sender.rewrites_date_and_message_id is True
            assert sender.send([msg])[0].provider_id.endswith("-ses")
        assert api.deliveries[0].raw == msg.data and api.problems == []


def test_check_proves_credentials(api: FakeAPI) -> None:
    assert "credentials accepted" in make(api).check()
    opts = {"base_url": api.base_url, **EXTRA.get(api.provider, {})}
    env = {k: ("wrong-secret" if k != "AWS_ACCESS_KEY_ID" else v) for k, v in ENV.items()}
    wrong = build_sender(SenderSpec(api.provider, api.provider, opts, env))
    with pytest.raises(SendPermanentError) as info:
        wrong.check()
    assert str(info.value).startswith(f"{api.provider}: 40") and "wrong-secret" not in str(
        info.value)
    assert api.problems == []


@pytest.mark.parametrize(("kind", "body"), [
    ("sendgrid", b'{"errors": [{"message": "The from object must be provided", '
                 b'"field": "from.email"}]}'),
    ("mailgun", b'{"message": "from parameter is missing"}'),
])
def test_request_errors_are_not_recipient_bounces(kind: str, body: bytes) -> None:
    with FakeAPI(kind, secret=API_SECRET) as api:
        api.script.append((400, {"Content-Type": "application/json"}, body))
        with make(api) as sender:
            (r,) = sender.send([outgoing()])
    assert r.status is Status.REJECTED and r.code == 400 and "400" in r.text
