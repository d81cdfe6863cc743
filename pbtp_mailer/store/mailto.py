"""Unsubscribe requests that arrived by e-mail (the ``mailto:`` of List-Unsubscribe).

The mailto URL asks the reader's client to send ``Subject: unsubscribe
TOKEN``. An export of the unsubscribe mailbox (mbox file or Maildir folder)
is read here; each message whose subject carries a valid token unsubscribes
that membership, everything else is reported with its place so a person can
handle it by hand (``pbtp-mailer unsubscribe EMAIL``). The token is the
proof: the From address is not trusted (it may be an alias or a forward).
"""

from __future__ import annotations

import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING

from pbtp_mailer.errors import StoreError, TokenError
from pbtp_mailer.tokens import read_token

if TYPE_CHECKING:
    from pbtp_mailer.store import Store

__all__ = ["MailtoReport", "process_mailbox", "token_from_subject"]

MAX_MESSAGES = 1_000_000
_TOKEN_IN_SUBJECT = re.compile(
    r"\bunsubscribe\s+([A-Za-z0-9_-]{32})(?![A-Za-z0-9_-])", re.IGNORECASE)


@dataclass
class MailtoReport:
    messages: int = 0
    applied: list[tuple[str, str]] = field(default_factory=list)  # (email, list)
    already: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def token_from_subject(subject: str) -> str | None:
    m = _TOKEN_IN_SUBJECT.search(subject)
    return m.group(1) if m else None


def _subject(msg: Message) -> str:
    raw = msg.get("Subject", "")
    try:
        return str(make_header(decode_header(str(raw))))
    except (UnicodeError, LookupError, ValueError):
        return str(raw)


def _messages(path: Path) -> Iterator[Message]:
    if path.is_dir():
        if not (path / "cur").is_dir() and not (path / "new").is_dir():
            raise StoreError(f"{path}: a folder but not a Maildir (no cur/ or new/)")
        md = mailbox.Maildir(path, factory=None, create=False)
        for key in sorted(md.keys()):
            yield md.get_message(key)
        return
    if not path.is_file():
        raise StoreError(f"{path}: no such mbox file or Maildir folder")
    box = mailbox.mbox(path, create=False)
    try:
        for key in box.keys():
            yield box.get_message(key)
    finally:
        box.close()


def process_mailbox(store: Store, secret: bytes, path: Path) -> MailtoReport:
    """Apply every valid unsubscribe request in the mbox/Maildir at ``path``."""
    report = MailtoReport()
    for n, msg in enumerate(_messages(path), start=1):
        if n > MAX_MESSAGES:
            report.problems.append(f"{path}: stopped after {MAX_MESSAGES:,} messages")
            break
        report.messages = n
        sender = parseaddr(str(msg.get("From", "")))[1] or "unknown sender"
        place = f"{path}: message {n} from {sender}"
        subject = _subject(msg)
        token = token_from_subject(subject)
        if token is None:
            report.problems.append(f"{place}: no unsubscribe token in the subject {subject!r}")
            continue
        try:
            sid, lid = read_token(secret, token)
        except TokenError as exc:
            report.problems.append(f"{place}: {exc}")
            continue
        done = store.unsubscribe_member(sid, lid, source="mailto")
        if done is None:
            report.problems.append(f"{place}: unknown subscriber or list (deleted?)")
            continue
        email, ml, changed = done
        (report.applied if changed else report.already).append((email, ml.name))
    return report
