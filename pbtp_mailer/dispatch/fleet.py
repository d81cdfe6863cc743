"""One ``send`` process's place in a fleet of workers on one database.

Several ``pbtp-mailer send ISSUE --list L --yes`` processes (on one machine
or many) against one PostgreSQL share the rows of a dispatch without
duplicates (the ledger claims with ``FOR UPDATE SKIP LOCKED``). ``Fleet``
adds what a fleet needs on top:

* the sender's rate and quotas hold for all workers together
  (``store.ratebucket.SharedRateLimit``: token batches leased from one row);
* a heartbeat with a lease (``store.workers.WorkerRegistry``): each beat
  publishes this worker's sent count and rate for ``status`` and takes over
  the ``claimed`` rows of workers whose lease ran out; a worker that finds
  it lost its own lease stops before sending anything else. A worker that
  finds nothing left to claim takes over dead workers' rows at once (on this
  host a killed worker's pid is gone, so that needs no lease to run out).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pbtp_mailer.dispatch.ratelimit import Limits
    from pbtp_mailer.store.ledger import Ledger

__all__ = ["Fleet"]


class Fleet:
    def __init__(self, ledger: Ledger, owner: str, *, sender_name: str, limits: Limits,
                 sleep: Callable[[float], None] = time.sleep,
                 wall: Callable[[], float] = time.time) -> None:
        self.sender_name = sender_name
        self.limits = limits
        # the bucket refills by wall-clock seconds; quota windows follow the ledger's clock
        self.rate = ledger.shared_rate(sender_name, per_second=limits.per_second,
                                       windows=limits.windows, clock=wall, sleep=sleep)
        self.registry = ledger.workers(owner)
        self.quota: str | None = None
        self.lost: str | None = None
        self._next_look = 0.0  # time.monotonic() of the next heartbeat check (called per message)

    def start(self, *, issue_id: str, list_name: str) -> None:
        self.registry.register(issue_id=issue_id, list_name=list_name, sender=self.sender_name)

    def take(self, want: int) -> int:
        """How many messages may go now (waits for the shared rate); 0: a quota is full
        (``self.quota`` says which)."""
        n = self.rate.take(want)
        if n == 0 and self.rate.full:
            full = self.rate.full
            self.quota = (f"sender '{self.sender_name}' reached its per-{full} limit "
                          f"({self.limits.windows[full]})")
        return n

    def poll(self, want: int) -> int | float:
        """``take`` without waiting: a float is the seconds to wait before asking again."""
        got = self.rate.poll(want)
        if got == 0 and not isinstance(got, float) and self.rate.full:
            full = self.rate.full
            self.quota = (f"sender '{self.sender_name}' reached its per-{full} limit "
                          f"({self.limits.windows[full]})")
        return got

    def unspend(self, n: int) -> None:
        """Tokens polled for rows that were then skipped: they stay this worker's."""
        self.rate.unspend(n)

    def tick(self, sent: int, dispatch_id: int) -> bool:
        """Beat when due and take over dead workers' claims; False: this worker lost its
        lease (declared dead by another) and must stop."""
        now = time.monotonic()
        if now < self._next_look:
            return True
        self._next_look = now + 1.0
        if not self.registry.due():
            return True
        if not self.registry.beat(sent):
            self.lost = ("this worker missed its heartbeats and was declared dead; "
                         "its claimed rows went to other workers")
            return False
        self.registry.take_over(dispatch_id)
        return True

    def rescue(self, dispatch_id: int) -> int:
        """Nothing left to claim: take over dead workers' claimed rows now (not at the
        next beat); how many came back to pending."""
        return self.registry.take_over(dispatch_id).released

    def close(self) -> None:
        try:
            self.rate.close()
        finally:
            self.registry.unregister()
