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
"""

from __future__ import annotations

import enum
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
