"""Postmark bounce, spam-complaint and subscription-change webhooks.

Postmark does not sign its webhooks: the URL carries HTTP Basic credentials
(``https://USER:PASSWORD@host/feedback/postmark``), checked here in constant
time against ``[feedback] postmark_user`` and the password in the
environment variable named by ``postmark_password_env``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from pbtp_mailer.feedback.events import FeedbackEvent
from pbtp_mailer.feedback.webhooks.base import Rejected, Request, field, parse_json, parse_time

__all__ = ["check_basic_auth", "postmark_events"]

HARD = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated", "Unknown"}
SOFT = {"SoftBounce", "Transient", "DnsError", "MailFrontier", "Blocked", "SMTPApiError",
        "InboxFull", "ISPBlock", "TemplateRenderingFailed", "DMARCPolicy"}
COMPLAINT = {"SpamComplaint", "SpamNotification", "VirusNotification"}
# AutoResponder, OpenRelayTest, ChallengeVerification, Subscribe, Unsubscribe, ...: not bounces


def check_basic_auth(req: Request, user: str, password: str) -> None:
    header = req.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise Rejected(401, "Basic authentication required")
    try:
        got_user, sep, got_pw = base64.b64decode(value.strip(), validate=True).decode(
            "utf-8").partition(":")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Rejected(401, "bad Basic credentials") from None
    ok_user = hmac.compare_digest(got_user.encode(), user.encode())
    ok_pw = hmac.compare_digest(got_pw.encode(), password.encode())
    if not (sep and ok_user and ok_pw):
        raise Rejected(401, "bad Basic credentials")


def postmark_events(body: bytes) -> list[FeedbackEvent]:
    p: Any = parse_json(body)
    if not isinstance(p, dict):
        raise Rejected(400, "Postmark body is not an object")
    record = p.get("RecordType")
    if record in ("Bounce", "SpamComplaint"):
        btype = str(field(p, "Type"))
        kind = ("complaint" if btype in COMPLAINT else "hard" if btype in HARD
                else "soft" if btype in SOFT else None)
        if kind is None:
            return []
        when = parse_time(p.get("BouncedAt") or field(p, "ReceivedAt", required=False)
                          or "0", "BouncedAt")
        return [FeedbackEvent(
            email=str(field(p, "Email")), kind=kind, source="postmark",
            event_id=f"{record}:{field(p, 'ID')}", received_at=when,
            status=str(p.get("TypeCode") or btype), diagnostic=str(p.get("Description") or btype),
            provider_id=str(p.get("MessageID") or "") or None)]
    if record == "SubscriptionChange":
        if not p.get("SuppressSending") or p.get("SuppressionReason") != "ManualSuppression":
            return []  # bounces and complaints come as their own records; reactivations: ignore
        when = parse_time(field(p, "ChangedAt"), "ChangedAt")
        email = str(field(p, "Recipient"))
        return [FeedbackEvent(
            email=email, kind="unsubscribe", source="postmark",
            event_id=f"SubscriptionChange:{p.get('MessageID') or ''}:{email}:{when.isoformat()}",
            received_at=when, status="ManualSuppression", diagnostic="unsubscribed at Postmark",
            provider_id=str(p.get("MessageID") or "") or None)]
    if record is None:
        raise Rejected(400, "missing field RecordType")
    return []
