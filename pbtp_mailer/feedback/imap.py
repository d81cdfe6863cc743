"""``bounces fetch``: the IMAP bounce mailbox, processed once per message.

Each run logs in (TLS, or STARTTLS; the password from the environment
variable ``imap_password_env`` names), reads every message of
``imap_folder`` that is not marked unrecognised, records what it finds
(see ``ingest``) and moves each processed message (events or a harmless
auto-reply) to ``imap_done_folder``, created when missing. A message that
is not recognised stays in place, tagged with the keyword
``$PbtpUnrecognised`` so later runs skip it (or is moved to
``imap_failed_folder`` when one is set). A second run over the same mailbox
therefore does nothing. Moves happen only after the events are committed:
a crash in between means the message is read again, and recording is
idempotent.
"""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pbtp_mailer.errors import FeedbackError
from pbtp_mailer.feedback.ingest import IngestItem, IngestReport, ingest
from pbtp_mailer.feedback.mail import Unrecognised

if TYPE_CHECKING:
    from pbtp_mailer.feedback.policy import Policy
    from pbtp_mailer.feedback.settings import FeedbackSettings
    from pbtp_mailer.feedback.verp import Verp
    from pbtp_mailer.store import Store

__all__ = ["fetch", "UNRECOGNISED_KEYWORD"]

UNRECOGNISED_KEYWORD = "$PbtpUnrecognised"


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Mailbox:
    def __init__(self, settings: FeedbackSettings, password: str) -> None:
        self.where = f"{settings.imap_host}:{settings.imap_port}"
        ctx = ssl.create_default_context(cafile=settings.imap_ca_file)
        try:
            if settings.imap_security == "tls":
                self.conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    settings.imap_host or "", settings.imap_port, ssl_context=ctx, timeout=30)
            else:
                self.conn = imaplib.IMAP4(settings.imap_host or "", settings.imap_port,
                                          timeout=30)
                self.conn.starttls(ssl_context=ctx)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise FeedbackError(f"{self.where}: cannot connect: {exc}") from None
        try:
            self.conn.login(settings.imap_user or "", password)
        except imaplib.IMAP4.error:
            self.close()
            raise FeedbackError(f"{self.where}: login failed for '{settings.imap_user}'") from None
        self.can_move = "MOVE" in self.conn.capabilities

    def _ok(self, result: tuple[str, list[Any]], what: str) -> list[Any]:
        typ, data = result
        if typ != "OK":
            raise FeedbackError(f"{self.where}: {what} failed: {data!r}")
        return data

    def select(self, folder: str) -> None:
        self._ok(self.conn.select(_quote(folder)), f"SELECT {folder}")

    def ensure(self, folder: str) -> None:
        typ, _ = self.conn.create(_quote(folder))  # NO when it exists: fine
        self.conn.subscribe(_quote(folder))

    def uids(self) -> list[str]:
        data = self._ok(self.conn.uid("SEARCH", "UNKEYWORD", UNRECOGNISED_KEYWORD), "SEARCH")
        first = data[0] if data else b""
        return first.decode("ascii").split() if isinstance(first, bytes) else []

    def get(self, uid: str) -> bytes | None:
        data = self._ok(self.conn.uid("FETCH", uid, "(BODY.PEEK[])"), "FETCH")
        for part in data:
            if isinstance(part, tuple) and len(part) == 2 and isinstance(part[1], bytes):
                return part[1]
        return None

    def move(self, uid: str, folder: str) -> None:
        if self.can_move:
            self._ok(self.conn.uid("MOVE", uid, _quote(folder)), "MOVE")
            return
        self._ok(self.conn.uid("COPY", uid, _quote(folder)), "COPY")
        self._ok(self.conn.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)"), "STORE")
        self.conn.expunge()

    def tag(self, uid: str) -> None:
        self._ok(self.conn.uid("STORE", uid, "+FLAGS.SILENT", f"({UNRECOGNISED_KEYWORD})"),
                 "STORE")

    def close(self) -> None:
        try:
            self.conn.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def fetch(store: Store, settings: FeedbackSettings, environ: Mapping[str, str], *,
          verp: Verp | None, policy: Policy, limit: int | None = None,
          on_item: Callable[[IngestItem], None] | None = None) -> IngestReport:
    """Process the new messages of the bounce mailbox (see the module docstring)."""
    if not settings.imap_host or not settings.imap_user:
        raise FeedbackError("[feedback] imap_host and imap_user are not set",
                            hint="see docs/feedback.md, 'IMAP bounce mailbox'")
    password = environ.get(settings.imap_password_env, "")
    if not password:
        raise FeedbackError(f"${settings.imap_password_env} is not set (the IMAP password)")
    box = _Mailbox(settings, password)
    try:
        box.ensure(settings.imap_done_folder)
        if settings.imap_failed_folder:
            box.ensure(settings.imap_failed_folder)
        box.select(settings.imap_folder)
        uids = box.uids()[:limit] if limit else box.uids()

        def messages() -> Iterator[tuple[str, bytes]]:
            for uid in uids:
                data = box.get(uid)
                if data is not None:
                    yield f"{settings.imap_folder}/{uid}", data

        def done(item: IngestItem) -> None:
            uid = re.sub(r".*/", "", item.where)
            if not isinstance(item.parsed, Unrecognised):
                box.move(uid, settings.imap_done_folder)
            elif settings.imap_failed_folder:
                box.move(uid, settings.imap_failed_folder)
            else:
                box.tag(uid)
            if on_item is not None:
                on_item(item)

        return ingest(store, messages(), verp=verp, policy=policy, on_item=done, batch=50)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise FeedbackError(f"{box.where}: {exc}") from None
    finally:
        box.close()
