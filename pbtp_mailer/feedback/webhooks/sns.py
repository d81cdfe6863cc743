"""Amazon SES notifications through SNS: signature check, subscription, events.

SNS signs a canonical string of the message's fields (the list differs for
``Notification`` and the two confirmation types) with the key of an X.509
certificate it publishes at ``SigningCertURL``: RSA PKCS#1 v1.5 with SHA-1
(``SignatureVersion`` 1) or SHA-256 (2). The certificate is fetched over
HTTPS only from an ``sns.<region>.amazonaws.com`` host, so a forger cannot
point us at their own key. A ``SubscriptionConfirmation`` for an allowed
topic is confirmed by visiting its ``SubscribeURL`` (same host rule).

The SES payload (``notificationType`` or, for configuration-set event
publishing, ``eventType``): ``Bounce`` Permanent → hard, Transient /
Undetermined → soft; ``Complaint`` → complaint unless its feedback type
is ``not-spam``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from pbtp_mailer.feedback.events import FeedbackEvent
from pbtp_mailer.feedback.webhooks.base import Rejected, field, parse_json, parse_time

__all__ = ["SnsVerifier", "ses_events", "signing_string", "CERT_HOST"]

CERT_HOST = re.compile(r"^sns\.[a-z]{2}(-[a-z]+)+-\d\.amazonaws\.com(\.cn)?$")
_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                 "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                "TopicArn", "Type"),
}


def signing_string(msg: dict[str, Any]) -> bytes:
    """The canonical ``Key\\nValue\\n`` string SNS signs (``Subject`` only when present)."""
    kind = msg.get("Type")
    if kind not in _FIELDS:
        raise Rejected(400, "unknown SNS message Type")
    out = []
    for key in _FIELDS[kind]:
        if key == "Subject" and msg.get(key) is None:
            continue
        value = msg.get(key)
        if not isinstance(value, str):
            raise Rejected(400, f"SNS message without {key}")
        out.append(f"{key}\n{value}\n")
    return "".join(out).encode("utf-8")


def check_sns_url(url: object, what: str) -> str:
    if not isinstance(url, str):
        raise Rejected(400, f"{what} missing")
    parts = urlsplit(url)
    if parts.scheme != "https" or not CERT_HOST.match(parts.hostname or "") or parts.port:
        raise Rejected(403, f"{what} is not on an sns.<region>.amazonaws.com host")
    return url


class SnsVerifier:
    """Verifies SNS messages; ``fetch(url) -> bytes`` is the HTTPS GET (swappable in tests)."""

    def __init__(self, topic_arns: list[str], *, max_age: dt.timedelta,
                 fetch: Callable[[str], bytes] | None = None,
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self.topic_arns = set(topic_arns)
        self.max_age = max_age
        self.fetch = fetch or _https_get
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._keys: dict[str, Any] = {}
        self._lock = threading.Lock()

    def verify(self, body: bytes) -> dict[str, Any]:
        """The verified message, or ``Rejected``."""
        msg = parse_json(body)
        if not isinstance(msg, dict):
            raise Rejected(400, "SNS body is not an object")
        if msg.get("TopicArn") not in self.topic_arns:
            raise Rejected(403, "topic not allowed ([feedback] ses_topic_arns)")
        text = signing_string(msg)
        version = str(msg.get("SignatureVersion", ""))
        if version not in ("1", "2"):
            raise Rejected(400, "unsupported SignatureVersion")
        if not isinstance(msg.get("Signature"), str) or not msg["Signature"]:
            raise Rejected(400, "SNS message without Signature")
        try:
            signature = base64.b64decode(msg["Signature"], validate=True)
        except (binascii.Error, ValueError):
            raise Rejected(400, "Signature is not base64") from None
        key = self._key(check_sns_url(msg.get("SigningCertURL"), "SigningCertURL"))
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        if not isinstance(key, rsa.RSAPublicKey):
            raise Rejected(403, "signing certificate has no RSA key")
        algo = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303  (SNS v1 is SHA-1)
        try:
            key.verify(signature, text, padding.PKCS1v15(), algo)
        except InvalidSignature:
            raise Rejected(403, "bad SNS signature") from None
        sent = parse_time(msg.get("Timestamp"), "Timestamp")
        now = self.clock()
        if now - sent > self.max_age or sent - now > dt.timedelta(minutes=5):
            raise Rejected(403, "SNS message too old (or from the future)")
        return msg

    def _key(self, url: str) -> Any:
        with self._lock:
            if url in self._keys:
                return self._keys[url]
        from cryptography import x509

        try:
            cert = x509.load_pem_x509_certificate(self.fetch(url))
        except ValueError:
            raise Rejected(403, "signing certificate is not a PEM certificate") from None
        now = self.clock()
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            raise Rejected(403, "signing certificate expired or not yet valid")
        key = cert.public_key()
        with self._lock:
            if len(self._keys) > 32:
                self._keys.clear()
            self._keys[url] = key
        return key

    def confirm(self, msg: dict[str, Any]) -> None:
        """Confirm a subscription by visiting its (checked) ``SubscribeURL``."""
        self.fetch(check_sns_url(msg.get("SubscribeURL"), "SubscribeURL"))


def _https_get(url: str) -> bytes:
    import httpx

    try:
        resp = httpx.get(url, timeout=10.0, follow_redirects=False)
    except httpx.HTTPError:
        raise Rejected(424, "cannot fetch from SNS") from None
    if resp.status_code != 200 or len(resp.content) > 64 * 1024:
        raise Rejected(424, f"SNS answered {resp.status_code}")
    return resp.content


def ses_events(msg: dict[str, Any]) -> list[FeedbackEvent]:
    """The events of one verified SNS ``Notification`` carrying an SES notification."""
    payload = parse_json(str(msg.get("Message", "")).encode("utf-8"))
    if not isinstance(payload, dict):
        raise Rejected(400, "SES notification is not an object")
    kind = payload.get("notificationType") or payload.get("eventType")
    provider_id = field(payload, "mail", "messageId", required=False)
    if kind == "Bounce":
        b = field(payload, "bounce")
        hard = b.get("bounceType") == "Permanent"
        when = parse_time(b.get("timestamp") or msg.get("Timestamp"), "bounce.timestamp")
        return [FeedbackEvent(
            email=str(field(r, "emailAddress")), kind="hard" if hard else "soft", source="ses",
            event_id=f"{b.get('feedbackId') or msg['MessageId']}:{field(r, 'emailAddress')}",
            received_at=when, status=str(r.get("status") or ""),
            diagnostic=str(r.get("diagnosticCode") or b.get("bounceSubType") or ""),
            provider_id=provider_id) for r in _list(b, "bouncedRecipients")]
    if kind == "Complaint":
        c = field(payload, "complaint")
        ftype = str(c.get("complaintFeedbackType") or "abuse")
        if ftype == "not-spam":
            return []
        when = parse_time(c.get("timestamp") or msg.get("Timestamp"), "complaint.timestamp")
        return [FeedbackEvent(
            email=str(field(r, "emailAddress")), kind="complaint", source="ses",
            event_id=f"{c.get('feedbackId') or msg['MessageId']}:{field(r, 'emailAddress')}",
            received_at=when, status=ftype, diagnostic=f"{ftype} complaint",
            provider_id=provider_id) for r in _list(c, "complainedRecipients")]
    return []  # Delivery, Send, Open ...: nothing to record


def _list(obj: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = obj.get(key)
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise Rejected(400, f"{key} is not a list of objects")
    return items
