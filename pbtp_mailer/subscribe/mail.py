"""The mails of sign-up: confirm, already subscribed, welcome.

Their words are templates in the layout (``mails/NAME.txt.j2`` and
``mails/NAME.html.j2``, overridable like pages); the message is a proper
``multipart/alternative`` built by the ``email`` package, every header value
checked for CR/LF first, and it leaves through the configured sender
(``[subscribe] sender``, default the config's ``default_sender``). These
mails are transactional (the reader just asked for them): no List-Unsubscribe,
``Auto-Submitted: auto-generated`` so that autoresponders stay quiet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING, Any

import jinja2

from pbtp_mailer.compose.layouts import layout_dirs
from pbtp_mailer.compose.message import check_header_value
from pbtp_mailer.errors import ComposeError, MailerError

if TYPE_CHECKING:
    from pbtp_mailer.config import Config
    from pbtp_mailer.senders.base import Sender

__all__ = ["Mailer", "build_message"]


def build_message(config: Config, to: str, subject: str, text: str, html: str) -> bytes:
    """An RFC 5322 message (CRLF) with a text and an HTML part."""
    nl = config.newsletter
    for name, value in (("To", to), ("Subject", subject), ("From", nl.from_addr)):
        check_header_value(name, value)
    msg = EmailMessage(policy=policy.SMTP if to.isascii() else policy.SMTPUTF8)
    msg["From"] = nl.from_addr
    if nl.reply_to:
        msg["Reply-To"] = nl.reply_to
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    msg["Message-ID"] = make_msgid("subscribe", domain=nl.message_id_domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    return msg.as_bytes()


class Mailer:
    """Renders a mail from the layout and sends it; ``send`` says whether it was accepted."""

    def __init__(self, config: Config, sender_name: str | None, layout: str = "default",
                 common: dict[str, Any] | None = None,
                 sender_factory: Callable[[], Sender] | None = None) -> None:
        self.config = config
        self.sender_name = sender_name
        nl = config.newsletter
        self.common = {"site": nl.name, "postal_address": nl.postal_address,
                       "language": nl.language, "direction": nl.direction, **(common or {})}
        self._factory = sender_factory
        folders = [str(root / name / "mails") for root in layout_dirs(config.base_dir)
                   for name in dict.fromkeys((layout, "default"))
                   if (root / name / "mails").is_dir()]
        loader = jinja2.FileSystemLoader(folders)
        self._html = jinja2.Environment(loader=loader, autoescape=True,
                                        undefined=jinja2.StrictUndefined)
        self._text = jinja2.Environment(loader=loader, autoescape=False,
                                        undefined=jinja2.StrictUndefined)
        self.failures = 0

    def render(self, name: str, **values: Any) -> tuple[str, str, str]:
        """(subject, text, html) of mail ``name``; the subject is the text part's first line."""
        try:
            text = self._text.get_template(f"{name}.txt.j2").render(**self.common, **values)
            html = self._html.get_template(f"{name}.html.j2").render(**self.common, **values)
        except jinja2.TemplateError as exc:
            raise ComposeError(f"mails/{name}: {exc}") from None
        first, _, body = text.partition("\n")
        subject = first.removeprefix("Subject:").strip()
        return subject, body.lstrip("\n"), html

    def send(self, to: str, name: str, **values: Any) -> bool:
        from pbtp_mailer.senders.base import Outgoing
        from pbtp_mailer.senders.registry import create_sender

        subject, text, html = self.render(name, **values)
        data = build_message(self.config, to, subject, text, html)
        mail_from = self.config.newsletter.from_address
        try:
            sender = self._factory() if self._factory else create_sender(self.sender_name,
                                                                         self.config)
            with sender:
                results = sender.send([Outgoing(mail_from, (to,), data)])
        except MailerError:
            self.failures += 1
            return False
        ok = bool(results) and all(r.ok for r in results)
        if not ok:
            self.failures += 1
        return ok
