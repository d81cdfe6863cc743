"""The ``[feedback]`` table of pbtp-mailer.toml (read with ``config.section``).

Secrets are never here: the table names the environment variables that
hold them (``*_env``), like the senders' tables do.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["FeedbackSettings", "load_settings"]


class FeedbackSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: VERP: envelope sender ``bounces+TOKEN@bounce_domain`` (when a domain is set)
    bounce_domain: str | None = None
    verp: bool = True
    verp_local: str = "bounces"
    #: soft rule: suppress after ``soft_bounces`` soft bounces among the last ``soft_window`` sends
    soft_bounces: Annotated[int, Field(ge=1)] = 3
    soft_window: Annotated[int, Field(ge=1)] = 5
    #: complaint-rate gates over the last ``rate_dispatches`` finished dispatches
    complaint_warn_rate: Annotated[float, Field(ge=0, le=1)] = 0.001
    complaint_refuse_rate: Annotated[float, Field(ge=0, le=1)] = 0.003
    rate_dispatches: Annotated[int, Field(ge=1)] = 3
    # IMAP bounce mailbox (bounces fetch)
    imap_host: str | None = None
    imap_port: int = 993
    imap_security: Literal["tls", "starttls"] = "tls"
    imap_user: str | None = None
    imap_password_env: str = "PBTP_MAILER_IMAP_PASSWORD"
    imap_folder: str = "INBOX"
    imap_done_folder: str = "pbtp-processed"
    imap_failed_folder: str | None = None
    imap_ca_file: str | None = None
    # webhooks (serve): an endpoint answers only when its provider is configured
    ses_topic_arns: list[str] = []
    postmark_user: str | None = None
    postmark_password_env: str = "PBTP_MAILER_POSTMARK_WEBHOOK_PASSWORD"
    sendgrid_public_key: str | None = None  # base64 DER of SendGrid's verification key
    mailgun_signing_key_env: str = "PBTP_MAILER_MAILGUN_SIGNING_KEY"
    mailgun_enabled: bool = False
    webhook_max_bytes: Annotated[int, Field(ge=1024)] = 256 * 1024
    webhook_max_age_seconds: Annotated[int, Field(ge=1)] = 300

    @field_validator("bounce_domain", "verp_local", "imap_host")
    @classmethod
    def _plain_name(cls, v: str | None) -> str | None:
        if v is not None and (not v or any(c in v for c in "\r\n\0 @+\t")):
            raise ValueError("must be a plain name (no spaces, '@', '+', CR, LF or NUL)")
        return v

    @field_validator("imap_user", "postmark_user")
    @classmethod
    def _no_controls(cls, v: str | None) -> str | None:
        if v is not None and any(c in v for c in "\r\n\0"):
            raise ValueError("must not contain CR, LF or NUL")
        return v


def load_settings(config: object) -> FeedbackSettings:
    """``config.section("feedback", FeedbackSettings)``, tolerant of configs without sections."""
    section = getattr(config, "section", None)
    if section is None:
        return FeedbackSettings()
    result: FeedbackSettings = section("feedback", FeedbackSettings)
    return result
