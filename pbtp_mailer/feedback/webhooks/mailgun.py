"""Mailgun webhooks: HMAC-SHA256 of timestamp + token, fresh and never seen before.

Each request carries ``signature: {timestamp, token, signature}``; the
signature is the hex HMAC-SHA256 of ``timestamp + token`` under the webhook
signing key (environment variable named by ``mailgun_signing_key_env``).
A timestamp older than the window (5 minutes) or a token already seen is
refused: that is what stops a captured request from being replayed.
Events: ``failed`` (severity permanent → hard, temporary → soft),
``complained``, ``unsubscribed``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any

from pbtp_mailer.feedback.events import FeedbackEvent
from pbtp_mailer.feedback.webhooks.base import Rejected, field, parse_time

__all__ = ["verify_mailgun", "mailgun_events"]


def verify_mailgun(payload: Any, key: bytes, *, now: dt.datetime,
                   max_age: dt.timedelta) -> str:
    """Check the signature and its age; returns the token (the replay key)."""
    if not isinstance(payload, dict):
        raise Rejected(400, "Mailgun body is not an object")
    sig = field(payload, "signature")
    ts, token, given = (str(field(sig, k)) for k in ("timestamp", "token", "signature"))
    want = hmac.new(key, (ts + token).encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, given.lower()):
        raise Rejected(403, "bad signature")
    sent = parse_time(ts, "signature.timestamp")
    if abs((now - sent).total_seconds()) > max_age.total_seconds():
        raise Rejected(403, "timestamp outside the allowed window")
    if not 16 <= len(token) <= 200:
        raise Rejected(400, "bad token")
    return token


def mailgun_events(payload: dict[str, Any]) -> list[FeedbackEvent]:
    e = field(payload, "event-data")
    if not isinstance(e, dict):
        raise Rejected(400, "event-data is not an object")
    name = e.get("event")
    if name == "failed":
        kind = "hard" if e.get("severity") == "permanent" else "soft"
    elif name == "complained":
        kind = "complaint"
    elif name == "unsubscribed":
        kind = "unsubscribe"
    else:
        return []
    raw = e.get("delivery-status")
    status: dict[str, Any] = raw if isinstance(raw, dict) else {}
    headers = field(e, "message", "headers", required=False) or {}
    mid = headers.get("message-id") if isinstance(headers, dict) else None
    return [FeedbackEvent(
        email=str(field(e, "recipient")), kind=kind, source="mailgun", event_id=str(field(e, "id")),
        received_at=parse_time(field(e, "timestamp"), "event-data.timestamp"),
        status=str(status.get("code") or ""),
        diagnostic=str(status.get("message") or status.get("description") or e.get("reason") or name),
        message_id=f"<{mid}>" if mid and not str(mid).startswith("<") else mid,
        provider_id=(f"<{mid}>" if mid and not str(mid).startswith("<") else mid))]
