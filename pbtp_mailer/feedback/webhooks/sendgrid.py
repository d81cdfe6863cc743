"""SendGrid Event Webhook: ECDSA P-256 signature over timestamp + body.

SendGrid signs ``X-Twilio-Email-Event-Webhook-Timestamp`` followed by the
raw body with its key; the signature (base64 DER) is in
``X-Twilio-Email-Event-Webhook-Signature``. The verification key (public,
base64 DER, shown in SendGrid's settings) is ``[feedback]
sendgrid_public_key``. Events: ``bounce`` (type ``bounce`` hard, ``blocked``
soft), ``dropped`` for a bounced/invalid address (hard), ``spamreport``,
``unsubscribe`` and ``group_unsubscribe``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

from pbtp_mailer.feedback.events import FeedbackEvent
from pbtp_mailer.feedback.webhooks.base import Rejected, Request, field, parse_json, parse_time

__all__ = ["load_public_key", "verify_sendgrid", "sendgrid_events"]

SIG = "x-twilio-email-event-webhook-signature"
TS = "x-twilio-email-event-webhook-timestamp"


def load_public_key(b64: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    key = load_der_public_key(base64.b64decode(b64))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an elliptic-curve public key")
    return key


def verify_sendgrid(req: Request, key: Any, *, now: dt.datetime, max_age: dt.timedelta) -> str:
    """Check signature and freshness; returns the signature (the replay key)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    sig, ts = req.headers.get(SIG, ""), req.headers.get(TS, "")
    if not sig or not ts:
        raise Rejected(401, "missing signature headers")
    try:
        raw = base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError):
        raise Rejected(401, "signature is not base64") from None
    try:
        key.verify(raw, ts.encode("utf-8") + req.body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise Rejected(403, "bad signature") from None
    sent = parse_time(ts, "timestamp")
    if abs((now - sent).total_seconds()) > max_age.total_seconds():
        raise Rejected(403, "timestamp outside the allowed window")
    return sig


def sendgrid_events(body: bytes) -> list[FeedbackEvent]:
    items: Any = parse_json(body)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise Rejected(400, "SendGrid body is not a list of events")
    out = []
    for e in items:
        name = e.get("event")
        kind = None
        if name == "bounce":
            kind = "soft" if e.get("type") == "blocked" else "hard"
        elif name == "dropped" and "bounce" in str(e.get("reason", "")).lower():
            kind = "hard"
        elif name == "spamreport":
            kind = "complaint"
        elif name in ("unsubscribe", "group_unsubscribe"):
            kind = "unsubscribe"
        if kind is None:
            continue
        email = str(field(e, "email"))
        provider_id = str(e.get("sg_message_id") or "").split(".")[0] or None
        out.append(FeedbackEvent(
            email=email, kind=kind, source="sendgrid",
            event_id=str(e.get("sg_event_id") or f"{provider_id}:{name}:{email}"),
            received_at=parse_time(field(e, "timestamp"), "timestamp"),
            status=str(e.get("status") or ""), diagnostic=str(e.get("reason") or name),
            provider_id=provider_id))
    return out
