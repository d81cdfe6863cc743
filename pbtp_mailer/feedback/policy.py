"""What an event does to an address (the ``[feedback]`` policy).

    hard         suppressed as bounced, at once
    soft         suppressed as bounced after ``soft_bounces`` soft bounces
                 among the address's last ``soft_window`` copies (default 3 of 5)
    complaint    suppressed as complained: every list, for good
    unsubscribe  unsubscribed from the list of the copy (all lists if unknown)

ARF ``not-spam`` reports and auto-replies never reach the policy: the
parsers return ``Ignored`` for them. Suppressions apply at once to running
dispatches too, because the dispatcher re-checks them before each send.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pbtp_mailer.feedback.events import FeedbackEvent
    from pbtp_mailer.feedback.settings import FeedbackSettings
    from pbtp_mailer.store import Store
    from pbtp_mailer.store.feedback import Recorded

__all__ = ["Policy", "record_events"]


@dataclass(frozen=True)
class Policy:
    soft_bounces: int = 3
    soft_window: int = 5

    @classmethod
    def from_settings(cls, settings: FeedbackSettings) -> Policy:
        return cls(settings.soft_bounces, settings.soft_window)

    def suppression_for(self, kind: str, soft_hits: int) -> str | None:
        """The suppression reason for an event of ``kind`` (None: record only)."""
        if kind == "hard":
            return "bounced"
        if kind == "complaint":
            return "complained"
        if kind == "unsubscribe":
            return "unsubscribed"
        if kind == "soft" and soft_hits >= self.soft_bounces:
            return "bounced"
        return None


def record_events(store: Store, events: Iterable[FeedbackEvent],
                  policy: Policy | None = None) -> list[Recorded]:
    """Record events once each (by source and event id) and apply the policy."""
    return store.feedback.record(list(events), policy or Policy()) or []
