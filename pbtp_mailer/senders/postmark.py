"""Postmark: ``POST /email/batch``, up to 500 messages per call.

Postmark takes fields, not raw MIME, so our message is split (``_mime``)
and every custom header (List-*, Feedback-ID...) goes in ``Headers``. The
answer is 200 even when single messages fail: each element's ``ErrorCode``
is read (0 = accepted, 406 = inactive recipient → permanent, 300 = invalid
email request → the message is rejected, no recipient's fault). Account-wide
codes (10 bad token, 400/401 sender signature, 405/412/413 may not send)
stop the batch with ``SendPermanentError`` rather than blaming recipients.
Newsletters go through a broadcast stream: ``message_stream`` (default
``broadcast``). Tracking is off by default so the body is not rewritten.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, ClassVar

from pbtp_mailer.errors import SendPermanentError
from pbtp_mailer.senders._http import HTTPSender, Outcome
from pbtp_mailer.senders._mime import split_message
from pbtp_mailer.senders._options import per_recipient
from pbtp_mailer.senders.base import Outgoing, Status

__all__ = ["PostmarkSender", "MAX_BATCH", "MAX_RECIPIENTS"]

MAX_BATCH = 500
MAX_RECIPIENTS = 50
#: per-message ErrorCodes that concern the account, not the recipient
ACCOUNT_CODES = frozenset({10, 400, 401, 405, 412, 413})
#: "Invalid email request": the message (fields, size, attachments) is wrong, not an address
INVALID_MESSAGE = 300


class PostmarkSender(HTTPSender):
    kind: ClassVar[str] = "postmark"
    provider: ClassVar[str] = "postmark"
    default_base_url: ClassVar[str] = "https://api.postmarkapp.com"
    secret_option: ClassVar[str] = "token_env"
    default_secret_env: ClassVar[str] = "POSTMARK_SERVER_TOKEN"
    extra_options: ClassVar[frozenset[str]] = frozenset(
        {"message_stream", "batch_size", "track_opens", "track_links", "tag"})
    default_concurrency: ClassVar[int] = 1

    def __init__(self, spec: Any, **kwargs: Any) -> None:
        super().__init__(spec, **kwargs)
        per_call = self.opts.integer("batch_size", MAX_BATCH, minimum=1) or MAX_BATCH
        self.per_call = min(per_call, MAX_BATCH)
        self.batch_size = self.per_call * self.concurrency
        self.message_stream = self.opts.text("message_stream", "broadcast")
        self.track_opens = self.opts.flag("track_opens", False)
        self.track_links = self.opts.text("track_links", "None")
        self.tag = self.opts.text("tag")

    def _check_path(self) -> str:
        return "/server"

    def _auth_headers(self) -> dict[str, str]:
        return {"X-Postmark-Server-Token": self.secret or "", "Accept": "application/json"}

    def units(self, batch: Sequence[Outgoing]) -> list[list[Outgoing]]:
        return [list(batch[i:i + self.per_call]) for i in range(0, len(batch), self.per_call)]

    def _payload(self, msg: Outgoing) -> dict[str, Any]:
        f = split_message(msg.data)
        body: dict[str, Any] = {
            "From": f.from_ or msg.mail_from,
            "To": ", ".join(msg.rcpt_to),
            "Subject": f.subject,
            "Headers": [{"Name": n, "Value": v} for n, v in f.headers],
            "MessageStream": self.message_stream,
            "TrackOpens": self.track_opens,
            "TrackLinks": self.track_links,
        }
        if f.html is not None:
            body["HtmlBody"] = f.html
        if f.text is not None:
            body["TextBody"] = f.text
        if f.reply_to:
            body["ReplyTo"] = f.reply_to
        if self.tag:
            body["Tag"] = self.tag
        if f.attachments:
            body["Attachments"] = [
                {"Name": a.filename, "Content": base64.b64encode(a.content).decode(),
                 "ContentType": a.content_type,
                 **({"ContentID": f"cid:{a.content_id}"} if a.content_id else {})}
                for a in f.attachments
            ]
        return body

    def _send_unit(self, unit: list[Outgoing]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(unit)
        payload, sent = [], []
        for i, msg in enumerate(unit):
            if len(msg.rcpt_to) > MAX_RECIPIENTS:
                outcomes[i] = per_recipient(
                    msg, Status.PERMANENT, None,
                    f"postmark: {len(msg.rcpt_to)} recipients, at most {MAX_RECIPIENTS}")
                continue
            payload.append(self._payload(msg))
            sent.append(i)
        if sent:
            response = self._post("/email/batch", json=payload)
            try:
                answer = response.json()
            except ValueError:
                answer = None
            detail = ""
            if isinstance(answer, dict) and "ErrorCode" in answer:
                detail = f"{answer.get('ErrorCode')}: {answer.get('Message', '')}"
            self._account_error(response, detail or self._short(response))
            if response.status_code != 200 or not isinstance(answer, list):
                # 422 and friends: the request as a whole was refused
                code = answer.get("ErrorCode") if isinstance(answer, dict) else None
                if code in ACCOUNT_CODES:
                    raise SendPermanentError(f"postmark: {response.status_code} ({detail})",
                                             code=response.status_code)
                text = f"postmark: {response.status_code} {detail or self._short(response)}"
                status = Status.REJECTED if code == INVALID_MESSAGE else Status.PERMANENT
                for i in sent:
                    outcomes[i] = per_recipient(unit[i], status, response.status_code, text)
            else:
                if len(answer) != len(sent):
                    raise SendPermanentError(
                        f"postmark: answered {len(answer)} results for {len(sent)} messages")
                for i, item in zip(sent, answer, strict=True):
                    outcomes[i] = self._item(unit[i], item)
        return [o if o is not None else [] for o in outcomes]

    def _item(self, msg: Outgoing, item: dict[str, Any]) -> Outcome:
        code = int(item.get("ErrorCode", -1))
        text = str(item.get("Message", ""))
        if code == 0:
            return per_recipient(msg, Status.ACCEPTED, 0, text, str(item.get("MessageID", "")))
        if code in ACCOUNT_CODES:
            raise SendPermanentError(f"postmark: ErrorCode {code}: {text}", code=code)
        if code in (429, 100):
            return per_recipient(msg, Status.TRANSIENT, code, f"postmark {code}: {text}")
        if code == INVALID_MESSAGE:
            return per_recipient(msg, Status.REJECTED, code, f"postmark {code}: {text}")
        return per_recipient(msg, Status.PERMANENT, code, f"postmark {code}: {text}")
