"""Mailgun: ``POST /v3/DOMAIN/messages.mime`` with our own MIME bytes.

The message travels untouched (List-* and DKIM survive); ``to`` carries the
envelope recipients. Basic auth ``api:KEY``. ``region = "eu"`` picks the EU
endpoint. Tracking is off by default (``o:tracking = no``) so the body is not
rewritten after signing.
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar

from pbtp_mailer.errors import ConfigError, SendPermanentError
from pbtp_mailer.senders._http import HTTPSender, Outcome
from pbtp_mailer.senders._options import per_recipient
from pbtp_mailer.senders.base import Outgoing, Status

__all__ = ["MailgunSender"]

REGIONS = {"us": "https://api.mailgun.net", "eu": "https://api.eu.mailgun.net"}


class MailgunSender(HTTPSender):
    kind: ClassVar[str] = "mailgun"
    provider: ClassVar[str] = "mailgun"
    default_base_url: ClassVar[str] = REGIONS["us"]
    secret_option: ClassVar[str] = "api_key_env"
    default_secret_env: ClassVar[str] = "MAILGUN_API_KEY"
    extra_options: ClassVar[frozenset[str]] = frozenset({"domain", "region", "tracking"})

    def __init__(self, spec: Any, **kwargs: Any) -> None:
        super().__init__(spec, **kwargs)
        domain = self.opts.text("domain")
        if not domain:
            raise ConfigError(f"{self.opts.where}: 'domain' is required (mailgun://DOMAIN)")
        self.domain = domain
        region = (self.opts.text("region", "us") or "us").lower()
        if region not in REGIONS:
            raise ConfigError(f"{self.opts.where}: 'region' must be us or eu")
        if not self.opts.get("base_url"):
            self.base_url = REGIONS[region]
        self.tracking = self.opts.flag("tracking", False)

    def _check_path(self) -> str:
        return f"/v3/domains/{self.domain}"

    def _auth_headers(self) -> dict[str, str]:
        token = base64.b64encode(f"api:{self.secret}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def _send_unit(self, unit: list[Outgoing]) -> list[Outcome]:
        (msg,) = unit
        data: dict[str, Any] = {"to": list(msg.rcpt_to)}
        if not self.tracking:
            data["o:tracking"] = "no"
        response = self._post(
            f"/v3/{self.domain}/messages.mime", data=data,
            files={"message": ("message.mime", msg.data, "message/rfc822")},
        )
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        detail = str(answer.get("message", "")) if isinstance(answer, dict) else ""
        self._account_error(response, detail or self._short(response))
        if response.status_code == 200:
            return [per_recipient(msg, Status.ACCEPTED, 200, detail or "queued",
                                  str(answer.get("id", "")).strip("<>") or None)]
        if response.status_code == 404:
            raise SendPermanentError(
                f"mailgun: 404 — domain {self.domain!r} not found ({detail})".rstrip(), code=404)
        text = f"mailgun: {response.status_code} {detail}".rstrip()
        if response.status_code == 400 and "'to'" not in detail:
            # the request or message is wrong, not a recipient
            return [per_recipient(msg, Status.REJECTED, 400, text)]
        return [per_recipient(msg, Status.PERMANENT, response.status_code, text)]
