"""RFC 3464 delivery-status notifications → ``FeedbackEvent``s.

A DSN is ``multipart/report; report-type=delivery-status`` with a
``message/delivery-status`` part: one per-message block, then one block per
recipient (``Final-Recipient``, ``Action``, ``Status``, ``Diagnostic-Code``).
Only ``Action: failed`` is a bounce; ``delayed``, ``delivered``, ``relayed``
and ``expanded`` are progress reports. The class of ``Status`` decides:

    5.x.x            hard (the address is wrong or gone)
    4.x.x            soft (the MTA gave up on a temporary failure)
    5.2.2, 5.7.x     soft when the text says mailbox full, or blocked/spam/
                     policy: the address is fine, the receiver refused *us*

The copy is found by the VERP token of the DSN's own recipient when present,
else by the returned headers' Message-ID, else by the address.
"""

from __future__ import annotations

import datetime as dt
import re
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses, parsedate_to_datetime

from pbtp_mailer.feedback.events import FeedbackEvent, Ignored, digest_id

__all__ = ["parse_dsn", "is_dsn", "classify_status", "original_message_id", "clean_address"]

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_SOFT_HINTS = re.compile(r"(?i)mailbox full|over quota|quota exceeded|insufficient storage|"
                         r"blocked|spam|reputation|policy|rate limit|too many|try again later|"
                         r"temporar")


def is_dsn(msg: Message) -> bool:
    return (msg.get_content_type() == "multipart/report"
            and str(msg.get_param("report-type", "")).lower() == "delivery-status")


def classify_status(status: str, diagnostic: str) -> str | None:
    """``hard`` / ``soft`` for a failed recipient's status (None: not a failure code)."""
    m = _STATUS.search(status or "") or _STATUS.search(diagnostic or "")
    if m is None:
        code = re.search(r"\b([45])\d\d\b", diagnostic or "")
        if code is None:
            return None
        return "hard" if code.group(1) == "5" and not _SOFT_HINTS.search(diagnostic) else "soft"
    klass, subject, detail = m.groups()
    if klass == "4":
        return "soft"
    if klass == "2":
        return None
    if (subject, detail) == ("2", "2") or (subject == "7" and _SOFT_HINTS.search(diagnostic)):
        return "soft"
    return "hard"


def clean_address(value: str | None) -> str:
    """``rfc822; <Ann@Example.org>`` → ``Ann@Example.org`` (empty when it is not an address)."""
    if not value:
        return ""
    text = str(value).strip()
    if ";" in text:
        kind, _, text = text.partition(";")
        if kind.strip().lower() not in ("rfc822", "rfc 822"):
            return ""
    text = text.strip().strip("<>").strip()
    return text if "@" in text and not any(c in text for c in " \r\n\t<>") else ""


def _unfold(value: object) -> str:
    return re.sub(r"\s+", " ", str(value or "")).strip()


def original_message_id(msg: Message) -> str | None:
    """Message-ID of the returned copy (``message/rfc822`` or ``text/rfc822-headers`` part)."""
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global") and part.is_multipart():
            inner = part.get_payload(0)
            if isinstance(inner, Message) and inner.get("Message-ID"):
                return _unfold(inner["Message-ID"])
        elif ctype in ("text/rfc822-headers", "message/rfc822-headers", "message/rfc822"):
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                found = re.search(rb"(?im)^message-id:[ \t]*(<[^>\r\n]+>)", raw)
                if found:
                    return found.group(1).decode("ascii", "replace")
    return None


def received_time(msg: Message, fallback: dt.datetime) -> dt.datetime:
    try:
        value = parsedate_to_datetime(str(msg.get("Date", "")))
    except (TypeError, ValueError, IndexError):
        return fallback
    if value is None:
        return fallback
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _status_blocks(msg: Message) -> list[Message]:
    """The header blocks of the (global) delivery-status part.

    The ``email`` package splits ``message/delivery-status`` into blocks itself;
    ``message/global-delivery-status`` (RFC 6533) arrives as one message whose
    body holds the per-recipient blocks, so those are parsed here.
    """
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype not in ("message/delivery-status", "message/global-delivery-status"):
            continue
        payload = part.get_payload()
        if not isinstance(payload, list):
            return []
        blocks = [b for b in payload if isinstance(b, Message)]
        if len(blocks) == 1 and isinstance(blocks[0].get_payload(), str):
            rest = str(blocks[0].get_payload())
            blocks += [HeaderParser().parsestr(chunk) for chunk in
                       re.split(r"\r?\n[ \t]*\r?\n", rest) if chunk.strip()]
        return blocks
    return []


def parse_dsn(msg: Message, *, delivery_id: int | None, now: dt.datetime,
              fingerprint: str) -> list[FeedbackEvent] | Ignored:
    """The failed recipients of a DSN as events (``Ignored`` when none failed)."""
    blocks = _status_blocks(msg)
    if not blocks:
        return Ignored("multipart/report without a delivery-status part")
    when = received_time(msg, now)
    mid = original_message_id(msg)
    dsn_id = _unfold(msg.get("Message-ID")) or fingerprint
    events: list[FeedbackEvent] = []
    actions: list[str] = []
    for block in blocks[1:] if len(blocks) > 1 else blocks:
        addr = clean_address(block.get("Final-Recipient")) or clean_address(
            block.get("Original-Recipient"))
        action = _unfold(block.get("Action")).lower()
        if not addr or not action:
            continue
        actions.append(action)
        if action != "failed":
            continue
        status = _unfold(block.get("Status"))
        diagnostic = _unfold(block.get("Diagnostic-Code"))
        if ";" in diagnostic[:12]:
            diagnostic = diagnostic.split(";", 1)[1].strip()
        kind = classify_status(status, diagnostic) or "hard"
        code = _STATUS.search(status) or _STATUS.search(diagnostic)
        events.append(FeedbackEvent(
            email=addr, kind=kind, source="dsn", event_id=digest_id(dsn_id, addr.lower()),
            received_at=when, status=code.group(0) if code else status[:32],
            diagnostic=diagnostic, delivery_id=delivery_id, message_id=mid))
    if events:
        return events
    if actions:
        return Ignored(f"delivery-status report with no failed recipient ({', '.join(actions)})")
    return Ignored("delivery-status report without recipients")


def verp_candidates(msg: Message) -> list[str]:
    """Where the DSN says whom it was delivered to (the VERP return path)."""
    out: list[str] = []
    for header in ("Delivered-To", "X-Original-To", "Envelope-To", "To"):
        for value in msg.get_all(header, []) or []:
            out.extend(a for _, a in getaddresses([str(value)]) if a)
    return out
