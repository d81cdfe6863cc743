"""One returned message → events, ``Ignored`` (not a bounce) or ``Unrecognised``.

The order matters: a DSN and an ARF report are read by their structure
(RFC 3464, RFC 5965) with the standard ``email`` package; auto-replies
(``Auto-Submitted``, ``X-Autoreply``, "Out of office") are recognised next
and never count; what is left and looks like a bounce (mailer-daemon
sender, bounce subject) goes to flufl.bounce's detectors for the
non-standard formats (old Exim, qmail, Exchange, Yahoo). A bounce nobody can
read still counts when it came back to a valid VERP address: the token
names the copy, so the address is known without the returned headers.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesParser

from pbtp_mailer.feedback.arf import is_arf, parse_arf
from pbtp_mailer.feedback.dsn import is_dsn, parse_dsn, received_time, verp_candidates
from pbtp_mailer.feedback.events import FeedbackEvent, Ignored, digest_id
from pbtp_mailer.feedback.verp import Verp

__all__ = ["Unrecognised", "Parsed", "parse_message", "is_auto_reply"]

_BOUNCE_FROM = re.compile(r"(?i)mailer-daemon|postmaster|mail delivery (sub)?system|"
                          r"mail administrator")
_BOUNCE_SUBJECT = re.compile(
    r"(?i)undeliver|delivery status notification \(failure\)|delivery (has )?failed|"
    r"failure notice|returned mail|mail delivery failed|could not be delivered|"
    r"non[- ]?delivery|delivery failure|rejected|unzustellbar|non remis")
_AUTO_SUBJECT = re.compile(r"(?i)^\s*(auto(matic)?[ -]?(reply|response)|out of (the )?office|"
                           r"autoreply|abwesenheit|absence|vacation|away from)")


@dataclass(frozen=True)
class Unrecognised:
    """Not a report we can read and not plainly harmless: left where it is."""

    reason: str


Parsed = list[FeedbackEvent] | Ignored | Unrecognised

_parser = BytesParser(policy=policy.compat32)


def is_auto_reply(msg: Message) -> bool:
    auto = str(msg.get("Auto-Submitted", "")).strip().lower()
    if auto.startswith("auto-replied"):
        return True
    if any(msg.get(h) for h in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress-Reply")):
        return True
    if str(msg.get("Precedence", "")).strip().lower() == "auto_reply":
        return True
    return bool(_AUTO_SUBJECT.match(str(msg.get("Subject", ""))))


def _looks_like_bounce(msg: Message) -> bool:
    sender = f"{msg.get('From', '')} {msg.get('Return-Path', '')}"
    return bool(_BOUNCE_FROM.search(sender) or _BOUNCE_SUBJECT.search(str(msg.get("Subject", ""))))


def parse_message(data: bytes, *, verp: Verp | None = None,
                  now: dt.datetime | None = None,
                  envelope_to: str | None = None) -> Parsed:
    """Parse one returned message; never raises on bad input."""
    now = now or dt.datetime.now(dt.UTC)
    try:
        msg = _parser.parsebytes(data)
    except Exception as exc:  # noqa: BLE001  (the email package may raise anything on junk)
        return Unrecognised(f"cannot parse the message: {exc}")
    fingerprint = digest_id(data)
    delivery_id = None
    if verp is not None:
        delivery_id = verp.find(([envelope_to] if envelope_to else []) + verp_candidates(msg))
    try:
        return _classify(msg, delivery_id, now, fingerprint)
    except (ValueError, LookupError, TypeError, AttributeError) as exc:
        return Unrecognised(f"undecodable report: {exc}")


def _classify(msg: Message, delivery_id: int | None, now: dt.datetime,
              fingerprint: str) -> Parsed:
    if is_dsn(msg):
        result = parse_dsn(msg, delivery_id=delivery_id, now=now, fingerprint=fingerprint)
        if isinstance(result, list) or delivery_id is None or result.reason.startswith(
                "delivery-status report with no failed"):
            return result
        return _verp_only(msg, delivery_id, now, fingerprint, "DSN without a readable recipient")
    if is_arf(msg):
        return parse_arf(msg, delivery_id=delivery_id, now=now, fingerprint=fingerprint)
    bounce_like = _looks_like_bounce(msg)
    if not bounce_like and is_auto_reply(msg):
        return Ignored("auto-reply (never a bounce)")
    if not bounce_like and delivery_id is None:
        return Unrecognised("neither a DSN, an ARF report, an auto-reply nor a bounce")
    events = _fallback(msg, delivery_id, now, fingerprint)
    if events:
        return events
    if delivery_id is not None and bounce_like:
        return _verp_only(msg, delivery_id, now, fingerprint, "unreadable bounce")
    if delivery_id is not None and is_auto_reply(msg):
        return Ignored("auto-reply (never a bounce)")
    return Unrecognised("looks like a bounce but names no failed recipient")


def _fallback(msg: Message, delivery_id: int | None, now: dt.datetime,
              fingerprint: str) -> list[FeedbackEvent]:
    """Non-standard bounce formats, through flufl.bounce's detectors."""
    try:
        from flufl.bounce import all_failures
    except ImportError:  # pragma: no cover - a dependency, but keep the core usable without it
        return []
    # its detectors log a traceback for each one that chokes: we report such messages ourselves
    logging.getLogger("flufl.bounce").setLevel(logging.CRITICAL)
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # noqa: BLE001  (third-party detectors on arbitrary input)
        return []
    when = received_time(msg, now)
    report_id = str(msg.get("Message-ID", "")).strip() or fingerprint
    out = []
    for kind, found in (("hard", permanent), ("soft", temporary)):
        for raw in sorted(found):
            addr = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            addr = addr.strip().strip("<>")
            if "@" not in addr or any(c in addr for c in " \r\n\t"):
                continue
            out.append(FeedbackEvent(
                email=addr, kind=kind, source="dsn", event_id=digest_id(report_id, addr.lower()),
                received_at=when, status="", diagnostic="non-standard bounce "
                f"({str(msg.get('Subject', '')).strip()[:80]})", delivery_id=delivery_id))
    return out


def _verp_only(msg: Message, delivery_id: int, now: dt.datetime, fingerprint: str,
               why: str) -> list[FeedbackEvent]:
    """A bounce to a valid VERP address that names no recipient: the token names the copy."""
    report_id = str(msg.get("Message-ID", "")).strip() or fingerprint
    return [FeedbackEvent(email="", kind="hard", source="dsn",
                          event_id=digest_id(report_id, f"verp:{delivery_id}"),
                          received_at=received_time(msg, now), status="",
                          diagnostic=f"{why}, mapped by its VERP token",
                          delivery_id=delivery_id)]
