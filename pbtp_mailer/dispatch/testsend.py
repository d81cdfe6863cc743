"""Test sends: the issue as subscribers will get it, to any reviewer address.

Marked in both parts (``[TEST]`` subject prefix and a banner), the
per-recipient unsubscribe link replaced by a harmless test link, never
touching the ledger, and capped so a mistake cannot become a mass mailing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pbtp_mailer.errors import MailerError

if TYPE_CHECKING:
    from pbtp_mailer.config import Config
    from pbtp_mailer.issue.model import Issue
    from pbtp_mailer.senders.base import Sender

__all__ = ["TEST_BANNER", "ReviewResult", "send_review_copies", "DEFAULT_CAP"]

DEFAULT_CAP = 20
TEST_BANNER = ("TEST SEND: this is a review copy of the newsletter, not the real "
               "mailing. Links to unsubscribe do nothing here.")


@dataclass
class ReviewResult:
    subject: str
    sender: str
    accepted: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


def send_review_copies(issue_file: str | Path, config: Config, addresses: Sequence[str], *,
              sender_name: str | None = None, cap: int = DEFAULT_CAP,
              sender: Sender | None = None) -> ReviewResult:
    from pbtp_mailer.compose import compose
    from pbtp_mailer.compose.message import MessageTemplate, Personal
    from pbtp_mailer.issue.model import load_issue
    from pbtp_mailer.senders.base import Outgoing
    from pbtp_mailer.senders.registry import create_sender, sender_spec
    from pbtp_mailer.store.subscribers import InvalidAddress, normalize_email

    if not addresses:
        raise MailerError("no recipients: give --to ADDRESS (repeatable) or --list NAME")
    unique: dict[str, str] = {}
    for raw in addresses:
        try:
            display, key = normalize_email(raw)
        except InvalidAddress as exc:
            raise MailerError(f"{raw!r}: {exc}") from None
        unique.setdefault(key, display)
    if len(unique) > cap:
        raise MailerError(f"{len(unique)} test recipients is more than the cap of {cap}",
                          hint="test sends are for reviewers; raise --max if you mean it")
    issue = load_issue(issue_file)
    rendition = compose(issue, config, banner=TEST_BANNER, web=False)
    template = MessageTemplate(rendition, config.newsletter,
                               extra_headers={"X-PBTP-Test-Send": "yes"})
    base = config.newsletter.unsubscribe_base_url
    test_link = base + ("" if base.endswith("/") else "/") + "test-send-no-action"
    now = dt.datetime.now(dt.UTC)
    mail_from = config.newsletter.from_address
    batch = [Outgoing(mail_from, (addr,), template.render(Personal(
        email=addr, unsubscribe_url=test_link, date=now)), ref=addr)
        for addr in unique.values()]
    name = sender_spec(sender_name, config).name
    result = ReviewResult(rendition.subject, name)
    snd = sender or create_sender(sender_name, config)
    with snd:
        for start in range(0, len(batch), max(1, snd.batch_size)):
            for res in snd.send(batch[start:start + max(1, snd.batch_size)]):
                if res.ok:
                    result.accepted.append(res.recipient)
                else:
                    result.refused.append((res.recipient, f"{res.code or ''} {res.text}".strip()))
    _prepare_send(issue, config)
    return result


def _prepare_send(issue: Issue, config: Config) -> None:
    """Compose the issue as ``send`` will (no banner) into the compose cache, after the
    reviewers' copies left: test-send is the step before send, and a send that finds
    its rendition cached starts ~0.2 s sooner. Best effort: it never fails test-send."""
    from pbtp_mailer.compose.cache import compose_cached

    try:
        compose_cached(issue, config, web=False)
    except Exception:  # the send composes (and reports) for itself
        pass
