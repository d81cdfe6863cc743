"""The sender protocol: final message bytes in, one result per recipient out.

Senders are dumb translators. They never retry, sleep, rate-limit or touch
the store: the dispatcher owns all policy. A sender reports what the server
said about each recipient of each message, and raises only when it cannot
say anything per recipient (``SendTransientError`` when the whole batch is
worth retrying later, such as a refused connection; ``SendPermanentError``
when it never will be, such as wrong credentials).

A refusal says whose fault it is: ``PERMANENT`` is about the recipient (RCPT
5xx, a provider rejecting that address), the only kind that may suppress an
address; ``REJECTED`` is about the message itself (a 5xx reply to DATA such as
``552 5.3.4 message too big``, a provider's "invalid message"), which no
recipient caused.

Streaming (``send_stream(feed)``): instead of a batch, a sender may pull messages
from a ``Feed`` one at a time - each free session takes the next at once -
and report each message's results as soon as it has them. ``feed.take()``
returns the next message, or seconds to wait before asking again (the
dispatcher is recording replies), or None (no more: the session ends);
``feed.done(msg, results)`` reports one message; ``feed.failed(msg, error)``
one that could not be tried at all (never on the wire). ``BaseSender`` and
``stream_batches`` give every sender a streaming form made of ``send``
calls, so a sender that only has ``send`` works unchanged.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Protocol, runtime_checkable

__all__ = [
    "Outgoing",
    "Status",
    "SendResult",
    "Sender",
    "BaseSender",
    "SenderSpec",
    "Feed",
    "stream_batches",
    "stream_via",
]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message as it leaves: envelope plus final RFC 5322 bytes (CRLF line ends).

    ``ref`` is the caller's handle (a ledger row id) echoed back in results.
    """

    mail_from: str
    rcpt_to: tuple[str, ...]
    data: bytes
    ref: Any = None
    #: the producer promises no line of ``data`` starts with "." (pbtp_mailer's
    #: message template encodes a leading dot as "=2E"), so SMTP needs no dot-stuffing
    dot_safe: bool = False


class Status(enum.Enum):
    ACCEPTED = "accepted"
    #: try again later (4xx, a timeout after the body: maybe delivered)
    TRANSIENT = "transient"
    #: this recipient will never take it (RCPT 5xx, a provider refusing the address)
    PERMANENT = "permanent"
    #: the message itself was refused (DATA 5xx, provider "invalid message"): no recipient
    #: is at fault, and the same message to anyone else would be refused too
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the server said about one recipient of one message."""

    message: Outgoing
    recipient: str
    status: Status
    code: int | None = None
    text: str = ""
    provider_id: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is Status.ACCEPTED


@dataclass(frozen=True)
class SenderSpec:
    """How to build one sender: its configured name, kind and options.

    ``options`` come from ``[senders.NAME]`` in pbtp-mailer.toml or from a
    sender URL; secrets are never in it, only the *names* of environment
    variables that hold them (``password_env``, ``api_key_env``, ...), read
    from ``environ``.
    """

    name: str
    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    environ: dict[str, str] = field(default_factory=dict)
    base_dir: str = "."


@runtime_checkable
class Sender(Protocol):
    """What the dispatcher needs from a sender."""

    name: str
    #: how many messages the dispatcher should hand over per ``send`` call
    batch_size: int
    #: whether Date and Message-ID survive (SES rewrites them: do not DKIM-sign them)
    rewrites_date_and_message_id: bool

    def open(self) -> None: ...

    def close(self) -> None: ...

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]: ...

    def __enter__(self) -> Sender: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class Feed(Protocol):
    """Where a streaming sender takes its next message and reports each one's results."""

    def take(self) -> Outgoing | float | None: ...

    def done(self, message: Outgoing, results: list[SendResult]) -> None: ...

    def failed(self, message: Outgoing, error: Exception) -> None: ...


def stream_via(sender: Sender, feed: Feed) -> None:
    """``sender.send_stream(feed)`` when it has one, else ``stream_batches``."""
    method = getattr(sender, "send_stream", None)
    if callable(method):
        method(feed)
    else:
        stream_batches(sender, feed)


def stream_batches(sender: Sender, feed: Feed, *,
                   sleep: Any = time.sleep) -> None:
    """A stream made of ``send`` calls of up to ``batch_size`` messages.

    A partial batch goes out as soon as the feed asks to wait (it is waiting
    for these very results). A batch-level error is reported for each of its
    messages (none of them reached a server)."""
    from pbtp_mailer.errors import SenderError

    size = max(1, int(getattr(sender, "batch_size", 1) or 1))
    for _ in range(10**12):  # bounded by the feed: it returns None when done
        batch: list[Outgoing] = []
        ended = False
        while len(batch) < size:
            item = feed.take()
            if item is None:
                ended = True
                break
            if isinstance(item, float):
                if batch:
                    break
                sleep(item)
                continue
            batch.append(item)
        if batch:
            try:
                results = sender.send(batch)
            except SenderError as exc:
                for msg in batch:
                    feed.failed(msg, exc)
            else:
                by_message: dict[int, list[SendResult]] = {id(m): [] for m in batch}
                for r in results:
                    by_message.setdefault(id(r.message), []).append(r)
                for msg in batch:
                    feed.done(msg, by_message[id(msg)])
        if ended:
            return


class BaseSender:
    """Context-manager plumbing shared by the shipped senders."""

    kind: ClassVar[str] = "base"
    batch_size: int = 1
    rewrites_date_and_message_id: bool = False

    def __init__(self, spec: SenderSpec) -> None:
        self.spec = spec
        self.name = spec.name

    @classmethod
    def from_spec(cls, spec: SenderSpec) -> BaseSender:
        return cls(spec)

    def open(self) -> None:  # pragma: no cover - trivial default
        pass

    def close(self) -> None:  # pragma: no cover - trivial default
        pass

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]:  # pragma: no cover
        raise NotImplementedError

    def send_stream(self, feed: Feed) -> None:
        """Send what ``feed`` hands out until it says no more (see the module docstring)."""
        stream_batches(self, feed)  # type: ignore[arg-type]

    def __enter__(self) -> BaseSender:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
