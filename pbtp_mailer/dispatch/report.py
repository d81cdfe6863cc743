"""What one dispatch run did: ``DispatchReport`` and the exit codes of ``send``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pbtp_mailer.store.ledger_types import PauseReason

__all__ = ["DispatchReport", "EXIT_OK", "EXIT_FAILED", "EXIT_PAUSED", "EXIT_INCOMPLETE"]

EXIT_OK = 0
EXIT_FAILED = 3  # some recipients failed permanently
EXIT_PAUSED = 4  # paused (failures, sender, rejected message) or interrupted
EXIT_INCOMPLETE = 5  # deferred, rejected or ambiguous rows remain; a later run continues


@dataclass
class DispatchReport:
    """Counts of one run; a run that paused or stopped early returns one too."""

    issue_id: str
    list_name: str
    sender: str
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    skipped: int = 0
    rejected: int = 0  # the server refused the message itself (kept for a person's next run)
    header_refused: int = 0
    requeued_unknown: int = 0
    requeued_rejected: int = 0
    enqueued: int = 0
    ambiguous: int = 0
    paused: str | None = None  # why, for people (also the dispatch's note)
    pause_reason: PauseReason | None = None  # why, for programs (the dispatch's column)
    stopped: str | None = None
    quota: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def remaining(self) -> int:
        """Rows a later run must still handle (not those another live dispatcher is sending)."""
        c = self.counts
        return c.get("pending", 0) + c.get("deferred", 0) + c.get("rejected", 0) + self.ambiguous

    @property
    def ended_early(self) -> PauseReason | None:
        """Why the run ended before its work was done, if it did."""
        if self.pause_reason is not None:
            return self.pause_reason
        if self.stopped:
            return PauseReason.INTERRUPTED
        if self.quota:
            return PauseReason.QUOTA
        return None

    @property
    def pause_message(self) -> str:
        """``dispatch of ISSUE to 'LIST' paused: WHY`` (empty when not paused)."""
        if not self.paused:
            return ""
        return f"dispatch of {self.issue_id} to '{self.list_name}' paused: {self.paused}"

    @property
    def exit_code(self) -> int:
        if self.paused or self.stopped:
            return EXIT_PAUSED
        if self.failed:
            return EXIT_FAILED
        if self.remaining:
            return EXIT_INCOMPLETE
        return EXIT_OK
