"""RFC 5965 abuse reports (ARF, the feedback loops of Yahoo, Microsoft, ...) → complaints.

An ARF report is ``multipart/report; report-type=feedback-report`` with a
``message/feedback-report`` part (``Feedback-Type``, ``Original-Rcpt-To``,
``Arrival-Date`` ...) and the reported message or its headers. ``abuse``,
``fraud``, ``virus`` and ``other`` are complaints; ``not-spam`` (the person
took it *out* of the spam folder) and ``auth-failure`` reports are not.
The complainer is ``Original-Rcpt-To``, else the VERP token, else the
reported copy's Message-ID (receivers usually redact its To header).
"""

from __future__ import annotations

import datetime as dt
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

from pbtp_mailer.feedback.dsn import clean_address, original_message_id, received_time
from pbtp_mailer.feedback.events import FeedbackEvent, Ignored, digest_id

__all__ = ["is_arf", "parse_arf"]

COMPLAINT_TYPES = ("abuse", "fraud", "virus", "other")


def is_arf(msg: Message) -> bool:
    return (msg.get_content_type() == "multipart/report"
            and str(msg.get_param("report-type", "")).lower() == "feedback-report")


def _report_fields(msg: Message) -> Message | None:
    for part in msg.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        payload = part.get_payload()
        if isinstance(payload, list) and payload and isinstance(payload[0], Message):
            return payload[0]
        if isinstance(payload, str):
            return HeaderParser().parsestr(payload.lstrip("\r\n"))
    return None


def _reported_to(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "message/rfc822" and part.is_multipart():
            inner = part.get_payload(0)
            if isinstance(inner, Message):
                found = [a for _, a in getaddresses([str(inner.get("To", ""))]) if "@" in a]
                if len(found) == 1:
                    return found[0]
    return ""


def parse_arf(msg: Message, *, delivery_id: int | None, now: dt.datetime,
              fingerprint: str) -> list[FeedbackEvent] | Ignored:
    fields = _report_fields(msg)
    if fields is None:
        return Ignored("feedback-report without a message/feedback-report part")
    ftype = str(fields.get("Feedback-Type", "")).strip().lower()
    if ftype == "not-spam":
        return Ignored("ARF not-spam report (never a complaint)")
    if ftype not in COMPLAINT_TYPES:
        return Ignored(f"ARF {ftype or 'untyped'} report (not a complaint)")
    addrs = [clean_address(v) or str(v).strip().strip("<>")
             for v in fields.get_all("Original-Rcpt-To", []) or []]
    addrs = [a for a in addrs if "@" in a]
    mid = original_message_id(msg)
    if not addrs:
        redacted = _reported_to(msg)
        addrs = [redacted] if redacted and "redacted" not in redacted.lower() else [""]
    if addrs == [""] and delivery_id is None and mid is None:
        return Ignored("ARF report that names no recipient, no VERP token and no Message-ID")
    when = _arrival(fields, msg, now)
    report_id = str(msg.get("Message-ID", "")).strip() or fingerprint
    agent = str(fields.get("User-Agent", "")).strip()
    return [FeedbackEvent(email=a, kind="complaint", source="arf",
                          event_id=digest_id(report_id, a.lower()), received_at=when,
                          status=ftype, diagnostic=f"{ftype} report{' by ' + agent if agent else ''}",
                          delivery_id=delivery_id, message_id=mid) for a in addrs]


def _arrival(fields: Message, msg: Message, now: dt.datetime) -> dt.datetime:
    """``Arrival-Date`` of the report, else its ``Date``, else now."""
    sent = received_time(msg, now)
    arrival = fields.get("Arrival-Date") or fields.get("Received-Date")
    if not arrival:
        return sent
    holder = Message()
    holder["Date"] = str(arrival)
    return received_time(holder, sent)
