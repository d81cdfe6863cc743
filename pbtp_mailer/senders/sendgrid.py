"""SendGrid v3: ``POST /v3/mail/send`` with a Bearer API key; 202 means accepted.

SendGrid takes fields, not raw MIME: the message is split (``_mime``) and
custom headers (List-*) go in ``headers``; each envelope recipient gets its
own personalization, so recipients never see each other. The provider id is
the ``X-Message-Id`` response header. Click/open tracking is turned off so
the body is not rewritten after we built it.
"""

from __future__ import annotations

import base64
from email.utils import parseaddr
from typing import Any, ClassVar

from pbtp_mailer.senders._http import HTTPSender, Outcome
from pbtp_mailer.senders._mime import split_message
from pbtp_mailer.senders._options import per_recipient
from pbtp_mailer.senders.base import Outgoing, Status

__all__ = ["SendGridSender"]

#: headers SendGrid refuses in ``headers`` (they are fields or its own)
RESERVED = frozenset({"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
                      "content-transfer-encoding", "to", "from", "subject", "reply-to", "cc",
                      "bcc"})


def _address(value: str) -> dict[str, str]:
    name, addr = parseaddr(value)
    return {"email": addr, **({"name": name} if name else {})}


class SendGridSender(HTTPSender):
    kind: ClassVar[str] = "sendgrid"
    provider: ClassVar[str] = "sendgrid"
    default_base_url: ClassVar[str] = "https://api.sendgrid.com"
    secret_option: ClassVar[str] = "api_key_env"
    default_secret_env: ClassVar[str] = "SENDGRID_API_KEY"
    extra_options: ClassVar[frozenset[str]] = frozenset({"tracking"})

    def _check_path(self) -> str:
        return "/v3/scopes"

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}

    def _payload(self, msg: Outgoing) -> dict[str, Any]:
        f = split_message(msg.data)
        content = []
        if f.text is not None:
            content.append({"type": "text/plain", "value": f.text})
        if f.html is not None:
            content.append({"type": "text/html", "value": f.html})
        tracking = self.opts.flag("tracking", False)
        body: dict[str, Any] = {
            "personalizations": [{"to": [{"email": r}]} for r in msg.rcpt_to],
            "from": _address(f.from_ or msg.mail_from),
            "subject": f.subject,
            "content": content or [{"type": "text/plain", "value": " "}],
            "headers": {n: v for n, v in f.headers if n.lower() not in RESERVED},
            "tracking_settings": {"click_tracking": {"enable": tracking},
                                  "open_tracking": {"enable": tracking}},
        }
        if f.reply_to:
            body["reply_to"] = _address(f.reply_to)
        if f.attachments:
            body["attachments"] = [
                {"content": base64.b64encode(a.content).decode(), "type": a.content_type,
                 "filename": a.filename,
                 **({"disposition": "inline", "content_id": a.content_id}
                    if a.content_id else {})}
                for a in f.attachments
            ]
        return body

    def _send_unit(self, unit: list[Outgoing]) -> list[Outcome]:
        (msg,) = unit
        response = self._post("/v3/mail/send", json=self._payload(msg))
        detail, fields = "", []
        if response.status_code >= 300:
            try:
                errors = response.json().get("errors") or []
                detail = "; ".join(str(e.get("message", "")) for e in errors)
                fields = [str(e.get("field") or "") for e in errors]
            except (ValueError, AttributeError):
                detail = self._short(response)
        self._account_error(response, detail)
        if response.status_code in (200, 202):
            return [per_recipient(msg, Status.ACCEPTED, response.status_code, "accepted",
                                  response.headers.get("x-message-id"))]
        text = f"sendgrid: {response.status_code} {detail}".rstrip()
        if response.status_code == 400 and not any(f.startswith("personalizations")
                                                   for f in fields):
            # the request itself (from, content, headers) is wrong, not a recipient
            return [per_recipient(msg, Status.REJECTED, 400, text)]
        return [per_recipient(msg, Status.PERMANENT, response.status_code, text)]
