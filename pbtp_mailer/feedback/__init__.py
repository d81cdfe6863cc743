"""The feedback loop: bounces and complaints coming back after a send.

Every source (send-time SMTP refusals, RFC 3464 DSNs and RFC 5965 ARF
reports read from a file, a Maildir or IMAP, and the SES, Postmark,
SendGrid and Mailgun webhooks) becomes one ``FeedbackEvent``; ``Policy``
decides what it suppresses; the store records each event once. VERP return
paths tie a returned message to its ledger row.

Its public names load on first use (PEP 562): ``send`` reads the gate and the
settings only, and must not pay for the mail parsers at start-up. ``ingest``
is both a submodule and the function re-exported here; as with eager imports,
the package's ``ingest`` stays the function when the submodule loads.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from pbtp_mailer.lazy import lazy_exports

if TYPE_CHECKING:
    from pbtp_mailer.feedback.events import KINDS, SOURCES, FeedbackEvent, Ignored
    from pbtp_mailer.feedback.ingest import IngestReport, ingest, read_messages
    from pbtp_mailer.feedback.mail import Unrecognised, parse_message
    from pbtp_mailer.feedback.policy import Policy, record_events
    from pbtp_mailer.feedback.settings import FeedbackSettings, load_settings
    from pbtp_mailer.feedback.verp import Verp, verp_for

_WHERE = {
    "KINDS": "events", "SOURCES": "events", "FeedbackEvent": "events", "Ignored": "events",
    "IngestReport": "ingest", "ingest": "ingest", "read_messages": "ingest",
    "Unrecognised": "mail", "parse_message": "mail", "Policy": "policy",
    "record_events": "policy", "FeedbackSettings": "settings", "load_settings": "settings",
    "Verp": "verp", "verp_for": "verp",
}


__getattr__ = lazy_exports(__name__, _WHERE)


class _Package(types.ModuleType):
    """Keeps a re-exported name when the import system binds a submodule of that name."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _WHERE.get(name) == name:
            return  # feedback.ingest: the function, as ``from ... import ingest`` made it
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "FeedbackEvent",
    "Ignored",
    "KINDS",
    "SOURCES",
    "Policy",
    "record_events",
    "FeedbackSettings",
    "load_settings",
    "parse_message",
    "Unrecognised",
    "ingest",
    "read_messages",
    "IngestReport",
    "Verp",
    "verp_for",
]
