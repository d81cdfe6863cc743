"""The feedback loop: bounces and complaints coming back after a send.

Every source (send-time SMTP refusals, RFC 3464 DSNs and RFC 5965 ARF
reports read from a file, a Maildir or IMAP, and the SES, Postmark,
SendGrid and Mailgun webhooks) becomes one ``FeedbackEvent``; ``Policy``
decides what it suppresses; the store records each event once. VERP return
paths tie a returned message to its ledger row.
"""

from pbtp_mailer.feedback.events import KINDS, SOURCES, FeedbackEvent, Ignored
from pbtp_mailer.feedback.ingest import IngestReport, ingest, read_messages
from pbtp_mailer.feedback.mail import Unrecognised, parse_message
from pbtp_mailer.feedback.policy import Policy, record_events
from pbtp_mailer.feedback.settings import FeedbackSettings, load_settings
from pbtp_mailer.feedback.verp import Verp, verp_for

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
