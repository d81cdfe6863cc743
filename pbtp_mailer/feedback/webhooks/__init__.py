"""Provider webhooks (SES via SNS, Postmark, SendGrid, Mailgun) → feedback events.

``make_app`` is the WSGI app ``serve`` mounts at ``/feedback/``; each module
checks one provider's signature or credentials and turns its payload into
``FeedbackEvent``s.
"""

from pbtp_mailer.feedback.webhooks.app import make_app
from pbtp_mailer.feedback.webhooks.base import Rejected
from pbtp_mailer.feedback.webhooks.sns import SnsVerifier

__all__ = ["make_app", "Rejected", "SnsVerifier"]
