"""One contract, every sender (the model: Django's mail backend tests).

Each test runs against memory, outbox, console, SMTP (aiosmtpd with STARTTLS
and AUTH), and the Postmark, SendGrid, Mailgun and SES fakes on 127.0.0.1.
"""

from __future__ import annotations

import pytest

from pbtp_mailer.errors import SendPermanentError, SendTransientError
from pbtp_mailer.senders.base import Sender, Status
from tests.senders.conftest import Harness, outgoing


def _send_all(sender: Sender, messages: list) -> list:
    results = []
    for i in range(0, len(messages), sender.batch_size):
        results.extend(sender.send(messages[i:i + sender.batch_size]))
    return results


def test_is_a_sender(harness: Harness) -> None:
    sender = harness.make()
    assert isinstance(sender, Sender)
    assert sender.batch_size >= 1
    with sender as entered:
        assert entered is sender
    sender.close()  # closing twice is harmless


def test_send_one(harness: Harness) -> None:
    msg = outgoing("reader@example.net", subject="March issue")
    with harness.make() as sender:
        (result,) = sender.send([msg])
    assert result.status is Status.ACCEPTED, result
    assert result.ok and result.message is msg and result.message.ref == "reader@example.net"
    assert result.recipient == "reader@example.net"
    assert result.provider_id
    (got,) = harness.received()
    assert got.rcpts == ("reader@example.net",)
    assert got.subject == "March issue"


def test_send_many(harness: Harness) -> None:
    messages = [outgoing(f"r{i}@example.net", subject=f"n{i}") for i in range(23)]
    with harness.make() as sender:
        results = _send_all(sender, messages)
    assert [r.recipient for r in results] == [f"r{i}@example.net" for i in range(23)]
    assert all(r.status is Status.ACCEPTED for r in results)
    assert [r.message for r in results] == messages
    got = harness.received()
    assert sorted(g.subject for g in got) == sorted(f"n{i}" for i in range(23))


def test_unicode(harness: Harness) -> None:
    subject = "Grüße aus Zürich — ünïcödé ✉"
    body = "Ein Absatz mit Umlauten: äöü ß, und Emoji 📬.\r\n"
    with harness.make() as sender:
        (result,) = sender.send([outgoing(subject=subject, body=body)])
    assert result.ok, result
    (got,) = harness.received()
    assert got.subject == subject
    if harness.kind != "console":
        assert "Umlauten: äöü ß" in got.text and "📬" in got.text


def test_huge_message(harness: Harness) -> None:
    line = "." + "x" * 70 + "\r\n"  # leading dots exercise SMTP transparency
    body = line * (5 * 1024 * 1024 // len(line))
    with harness.make() as sender:
        (result,) = sender.send([outgoing(subject="big", body=body)])
    assert result.ok, result
    (got,) = harness.received()
    assert got.subject == "big"
    if harness.kind != "console":
        assert got.text.replace("\r\n", "\n") == body.replace("\r\n", "\n")


def test_server_refuses_one_recipient(harness: Harness) -> None:
    if harness.refuse is None:
        pytest.skip(f"{harness.kind} has no server that could refuse")
    harness.refuse("gone@example.net")
    batch = [outgoing("a@example.net"), outgoing("gone@example.net"), outgoing("b@example.net")]
    with harness.make() as sender:
        results = _send_all(sender, batch)
    assert [r.status for r in results] == [Status.ACCEPTED, Status.PERMANENT, Status.ACCEPTED]
    refused = results[1]
    assert refused.recipient == "gone@example.net" and refused.code and refused.text
    assert sorted(g.rcpts for g in harness.received()) == [("a@example.net",),
                                                          ("b@example.net",)]


def test_server_rejects_one_message(harness: Harness) -> None:
    """A refusal of the message itself (DATA 5xx, a provider's "invalid message") is
    ``REJECTED``, never ``PERMANENT``: no recipient is at fault, none may be suppressed."""
    if harness.refuse_message is None:
        pytest.skip(f"{harness.kind} has no server that could refuse a message")
    harness.refuse_message("spam@example.net")
    batch = [outgoing("a@example.net"), outgoing("spam@example.net"), outgoing("b@example.net")]
    with harness.make() as sender:
        results = _send_all(sender, batch)
    assert [r.status for r in results] == [Status.ACCEPTED, Status.REJECTED, Status.ACCEPTED]
    refused = results[1]
    assert refused.recipient == "spam@example.net" and refused.code and refused.text
    assert not refused.ok
    assert sorted(g.rcpts for g in harness.received()) == [("a@example.net",),
                                                          ("b@example.net",)]


def test_server_down(harness: Harness) -> None:
    if harness.down is None:
        pytest.skip(f"{harness.kind} has no server")
    sender = harness.down()
    error = SendPermanentError if harness.kind == "outbox" else SendTransientError
    with pytest.raises(error) as info:
        with sender:
            sender.send([outgoing()])
    message = str(info.value)
    assert harness.place in message
    assert "Traceback" not in message


def test_credentials_wrong(harness: Harness) -> None:
    if harness.wrong_credentials is None:
        pytest.skip(f"{harness.kind} has no credentials")
    sender = harness.wrong_credentials()
    with pytest.raises(SendPermanentError) as info:
        with sender:
            sender.send([outgoing()])
    message = str(info.value)
    assert harness.place in message
    if harness.secret:
        assert harness.secret not in message and "wrong" not in message
    assert harness.received() == []


class ListFeed:
    """A feed handing out ``messages``, asking for a short wait now and then."""

    def __init__(self, messages: list, pause_every: int = 5) -> None:
        self.todo = list(messages)
        self.pause_every = pause_every
        self.takes = 0
        self.done_: dict[int, list] = {}
        self.failed_: list[tuple[object, Exception]] = []

    def take(self):
        self.takes += 1
        if self.pause_every and self.takes % self.pause_every == 0:
            return 0.001  # "recording replies: ask again in a millisecond"
        return self.todo.pop(0) if self.todo else None

    def done(self, message, results) -> None:
        assert id(message) not in self.done_, "one report per message"
        self.done_[id(message)] = results

    def failed(self, message, error: Exception) -> None:
        self.failed_.append((message, error))


def test_stream_many(harness: Harness) -> None:
    from pbtp_mailer.senders.base import stream_via

    messages = [outgoing(f"r{i}@example.net", subject=f"n{i}") for i in range(23)]
    feed = ListFeed(messages)
    with harness.make() as sender:
        stream_via(sender, feed)
    assert feed.failed_ == []
    assert len(feed.done_) == 23
    for msg in messages:
        (result,) = feed.done_[id(msg)]
        assert result.status is Status.ACCEPTED and result.message is msg
        assert result.recipient == msg.rcpt_to[0]
    got = harness.received()
    assert sorted(g.subject for g in got) == sorted(f"n{i}" for i in range(23))


def test_stream_server_refuses_one_recipient(harness: Harness) -> None:
    from pbtp_mailer.senders.base import stream_via

    if harness.refuse is None:
        pytest.skip(f"{harness.kind} has no server that could refuse")
    harness.refuse("gone@example.net")
    batch = [outgoing("a@example.net"), outgoing("gone@example.net"), outgoing("b@example.net")]
    feed = ListFeed(batch, pause_every=0)
    with harness.make() as sender:
        stream_via(sender, feed)
    assert [feed.done_[id(m)][0].status for m in batch] == [
        Status.ACCEPTED, Status.PERMANENT, Status.ACCEPTED]
    assert sorted(g.rcpts for g in harness.received()) == [("a@example.net",),
                                                          ("b@example.net",)]
