"""One event model for every way a bounce or a complaint comes back.

A DSN, an ARF report, a provider webhook and a send-time 5xx all become a
``FeedbackEvent``: the address, what happened (``kind``), where we heard it
(``source``), the provider's own id for it (``event_id``: with ``source`` the
key that makes recording idempotent), the status code and diagnostic text,
and whatever names the copy it refers to (VERP delivery id, Message-ID,
provider message id). Parsers that find nothing to record return an
``Ignored`` with the reason (an ARF ``not-spam`` report, an auto-reply).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, replace

from pbtp_mailer.store.feedback_schema import EVENT_KINDS, EVENT_SOURCES

__all__ = ["FeedbackEvent", "Ignored", "KINDS", "SOURCES", "digest_id"]

KINDS = EVENT_KINDS
SOURCES = EVENT_SOURCES


@dataclass(frozen=True)
class FeedbackEvent:
    email: str
    kind: str  # hard | soft | complaint | unsubscribe
    source: str  # smtp | dsn | arf | ses | postmark | sendgrid | mailgun
    event_id: str
    received_at: dt.datetime
    status: str = ""  # enhanced status "5.1.1", or an SMTP/provider code
    diagnostic: str = ""
    delivery_id: int | None = None  # from a VERP token
    message_id: str | None = None  # Message-ID of the copy, when the report quotes it
    provider_id: str | None = None  # the sender's id of the copy (SES, Postmark, ...)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown feedback kind {self.kind!r}")
        if self.source not in SOURCES:
            raise ValueError(f"unknown feedback source {self.source!r}")

    def with_delivery(self, delivery_id: int | None) -> FeedbackEvent:
        return replace(self, delivery_id=delivery_id)

    def summary(self) -> str:
        code = f" {self.status}" if self.status else ""
        why = f": {self.diagnostic[:120]}" if self.diagnostic else ""
        return f"{self.kind} {self.email} ({self.source}{code}){why}"


@dataclass(frozen=True)
class Ignored:
    """A message or webhook item that is deliberately not a bounce (and why)."""

    reason: str


def digest_id(*parts: str | bytes) -> str:
    """A stable event id from content, for reports that carry no id of their own."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode("utf-8", "surrogateescape"))
        h.update(b"\0")
    return "sha256:" + h.hexdigest()[:40]
