"""The feedback loop: bounces and complaints coming back after a send.

Every source (send-time SMTP refusals, RFC 3464 DSNs and RFC 5965 ARF
reports read from a file, a Maildir or IMAP, and the SES, Postmark,
SendGrid and Mailgun webhooks) becomes one ``FeedbackEvent``; ``Policy``
decides what it suppresses; the store records each event once. VERP return
paths tie a returned message to its ledger row.
"""

from pbtp_mailer.feedback.events import KINDS, SOURCES, FeedbackEvent, Ignored
from pbtp_mailer.feedback.policy import Policy, record_events
from pbtp_mailer.feedback.settings import FeedbackSettings, load_settings

__all__ = [
    "FeedbackEvent",
    "Ignored",
    "KINDS",
    "SOURCES",
    "Policy",
    "record_events",
    "FeedbackSettings",
    "load_settings",
]
