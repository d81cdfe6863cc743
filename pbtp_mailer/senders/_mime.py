"""Our MIME bytes taken apart for the APIs that do not accept raw MIME.

Postmark and SendGrid want fields (From, Subject, HtmlBody, headers...).
Every header that is not one of those fields travels as a custom header, so
List-Id, List-Unsubscribe and List-Unsubscribe-Post survive; Date and
DKIM-Signature do not (the provider sets and signs its own).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

__all__ = ["Fields", "split_message"]

#: headers that become fields, or that the provider sets itself
FIELD_HEADERS = frozenset({
    "from", "to", "cc", "bcc", "subject", "reply-to", "date", "mime-version",
    "content-type", "content-transfer-encoding", "dkim-signature", "received",
    "return-path",
})


@dataclass
class Attachment:
    filename: str
    content_type: str
    content: bytes
    content_id: str | None = None


@dataclass
class Fields:
    from_: str = ""
    to: str = ""
    subject: str = ""
    reply_to: str | None = None
    text: str | None = None
    html: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)


def split_message(data: bytes) -> Fields:
    msg = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    out = Fields(
        from_=str(msg.get("from", "")),
        to=str(msg.get("to", "")),
        subject=str(msg.get("subject", "")),
        reply_to=str(msg["reply-to"]) if msg.get("reply-to") else None,
    )
    for name, value in msg.items():
        if name.lower() not in FIELD_HEADERS:
            out.headers.append((name, str(value)))
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = part.get_content_disposition()
        if disposition != "attachment" and ctype == "text/plain" and out.text is None:
            out.text = part.get_content()
        elif disposition != "attachment" and ctype == "text/html" and out.html is None:
            out.html = part.get_content()
        else:
            payload = part.get_payload(decode=True)
            cid = part.get("content-id")
            out.attachments.append(Attachment(
                filename=part.get_filename() or (cid or "attachment").strip("<>"),
                content_type=ctype,
                content=payload if isinstance(payload, bytes) else b"",
                content_id=cid.strip("<>") if cid else None,
            ))
    return out
