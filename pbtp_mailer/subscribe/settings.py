"""The ``[subscribe]`` table, and ``[web] base_url`` (where ``serve`` is reachable).

    [web]
    base_url = "https://news.example.org/pbtp/"   # default: unsubscribe_base_url minus "u/"

    [subscribe]
    sender = "smtp"               # default: the config's default_sender
    record_ip = false             # store IP and user agent in consent records
    confirm_days = 7              # how long a confirmation link works
    per_address_per_day = 3       # confirmation-type mails to one address a day
    per_ip_per_hour = 30          # sign-up and preference POSTs from one IP an hour
    consent_text = "..."          # shown on the form, stored with each consent
    welcome = false               # a welcome mail after confirmation
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pbtp_mailer.errors import ConfigError

if TYPE_CHECKING:
    from pbtp_mailer.config import Config

__all__ = ["SubscribeSettings", "WebSettings", "DEFAULT_CONSENT", "site_base", "site_url"]

DEFAULT_CONSENT = ("I want to receive this newsletter by e-mail. I can leave at any time with "
                   "the link at the end of every issue.")


def _one_line(value: str | None) -> str | None:
    if value is not None and any(c in value for c in "\r\n\0"):
        raise ValueError("must not contain CR, LF or NUL")
    return value


class SubscribeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sender: str | None = None
    record_ip: bool = False
    confirm_days: float = Field(default=7.0, gt=0, le=60)
    per_address_per_day: int = Field(default=3, ge=1, le=100)
    per_ip_per_hour: int = Field(default=30, ge=1, le=10_000)
    consent_text: str = Field(default=DEFAULT_CONSENT, min_length=10, max_length=2000)
    welcome: bool = False

    _check = field_validator("sender")(_one_line)


class WebSettings(BaseModel):
    """Only the keys this feature reads; ``[web]`` is shared with other features."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    base_url: str | None = None
    layout: str = "default"

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        _one_line(value)
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value if value.endswith("/") else value + "/"


def site_base(config: Config) -> str:
    """Where ``serve`` is reachable, ending in ``/``: ``[web] base_url``, else derived.

    Without ``base_url`` the one-click unsubscribe base (``…/u/``) minus its
    last segment is used, since both live on the same site.
    """
    web = config.section("web", WebSettings)
    if web.base_url:
        return web.base_url
    unsub = config.newsletter.unsubscribe_base_url.rstrip("/")
    if unsub.endswith("/u"):
        return unsub[:-1]
    where = str(config.path) if config.path else "config"
    raise ConfigError(f"{where}: [web] base_url is required (unsubscribe_base_url does not end "
                      "in /u/, so it cannot be derived)",
                      hint='add [web] base_url = "https://…/" where `pbtp-mailer serve` is reachable')


def site_url(config: Config, *parts: str) -> str:
    from urllib.parse import quote

    return site_base(config) + "/".join(quote(p, safe="") for p in parts)
