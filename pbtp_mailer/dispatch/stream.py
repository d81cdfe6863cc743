"""Streaming dispatch: each free session takes the next recipient at once.

``LedgerFeed`` is the dispatcher's side of ``Sender.send_stream(feed)``
(``senders.base.Feed``). There is no batch barrier: a session that finishes
a message reports it (``done``) and asks for the next (``take``) while the
other sessions go on. The exactly-once rules stay those of the batch loop:

* a row is ``sending`` durably before its DATA starts: ``take`` hands out
  only rows a committed transaction marked ``sending``;
* replies are recorded in grouped writes: when a session finds no row ready,
  the replies gathered so far are recorded *and* as many rows as there are
  idle sessions are marked ``sending``, in one transaction. A session waits
  (a pause of at most ``group_seconds``) until ``group`` replies are
  gathered, so the database sees one transaction per ``group`` messages, not
  one per message. Rows ``sending`` never exceed the number of sessions: that
  is the bound of what a crash leaves ambiguous.

Per message the feed does the personalisation (a join of precomputed byte
segments), one token from the fleet's shared rate (local, no database), and
the policy decision on the reply; all of it in the selector thread.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pbtp_mailer.errors import HeaderError, SendPermanentError
from pbtp_mailer.senders.base import Outgoing, Status
from pbtp_mailer.store.ledger_types import Claimed, Decision, DispatchInfo, PauseReason

if TYPE_CHECKING:
    from pbtp_mailer.dispatch.fleet import Fleet
    from pbtp_mailer.dispatch.plan import Personaliser
    from pbtp_mailer.dispatch.report import DispatchReport
    from pbtp_mailer.senders.base import SendResult
    from pbtp_mailer.store.ledger import Ledger

__all__ = ["LedgerFeed", "FeedSettings"]


@dataclass(frozen=True)
class FeedSettings:
    sessions: int  # the sender's sessions (SMTP) or batch size (HTTP): the ambiguity bound
    chunk: int  # rows claimed per reservation
    pause_after: int  # consecutive failures that pause the dispatch
    in_run_wait: float  # deferred rows due within this are retried in this run
    backoff_base: float
    group: int = 8  # replies recorded per transaction (or fewer after group_seconds)
    group_seconds: float = 0.003


class LedgerFeed:
    """Hands out rows marked ``sending``; gathers replies; records them in groups."""

    def __init__(self, *, ledger: Ledger, dispatch: DispatchInfo, owner: str, list_id: int,
                 personaliser: Personaliser, mail_from: str,
                 envelope_sender: Callable[[int, str], str], fleet: Fleet,
                 decide: Callable[[Claimed, SendResult, dt.datetime], Decision],
                 pause: Callable[[PauseReason, str], None],
                 rejection_note: Callable[[SendResult, DispatchReport], str],
                 report: DispatchReport, settings: FeedSettings, budget: int | None,
                 stop: Callable[[], str | None], clock: Callable[[], dt.datetime],
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None,
                 on_progress: Callable[[DispatchReport], None] | None = None) -> None:
        self.ledger, self.dispatch, self.owner, self.list_id = ledger, dispatch, owner, list_id
        self.personaliser, self.mail_from, self.fleet = personaliser, mail_from, fleet
        self.envelope_sender = envelope_sender  # the copy's VERP address, or From
        self.decide, self.report, self.s = decide, report, settings
        self._pause, self.rejection_note = pause, rejection_note
        self.budget, self.stop, self.clock, self.monotonic = budget, stop, clock, monotonic
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.on_progress = on_progress
        self.reserved: deque[Claimed] = deque()  # claimed, not yet 'sending'
        self.ready: deque[Claimed] = deque()  # 'sending', not yet handed to a session
        self.in_flight = 0
        self.decisions: list[Decision] = []
        self.first_reply_at = 0.0
        self.consecutive = 0
        self.last_error = ""
        self.hold_until = 0.0  # after a session could not even start: wait a little
        self.held = False  # backed off since the last message was handed out
        self.crash: Exception | None = None  # the policy failed on a reply (raised at the end)
        self.ended = False  # no more rows for any session (stop, pause, quota, budget)
        self.handed_out = 0
        self.now = clock()

    # -- the Feed protocol -----------------------------------------------------

    def take(self) -> Outgoing | float | None:
        for _ in range(10**6):  # bounded: each pass hands out, skips a refused row, or returns
            self._check_pause()  # here, not per reply: the replies of a batch all count
            if self.ended or not self._running():
                return None
            if self.crash is not None and not self.ready:
                return None  # the policy failed: send what is marked, claim nothing more
            wait = self.hold_until - self.monotonic()
            if wait > 0:
                return wait
            if not self.ready:
                got = self._refill()
                if got is not None:
                    return got
                if not self.ready:
                    return None  # nothing to claim, nothing due soon: this session ends
                continue
            c = self.ready.popleft()
            try:
                data = self.personaliser.message(c, self.now)
            except HeaderError as exc:
                self._gather(Decision(c.id, "failed", None, f"refused before sending: {exc}"))
                self.report.header_refused += 1
                self.report.failed += 1
                continue
            self.in_flight += 1
            self.handed_out += 1
            self.held = False
            if self.budget is not None:
                self.budget -= 1
            return Outgoing(self.envelope_sender(c.id, self.mail_from), (c.email,), data,
                            ref=c, dot_safe=True)
        raise RuntimeError("feed: no progress")  # pragma: no cover

    def done(self, message: Outgoing, results: list[SendResult]) -> None:
        self.in_flight -= 1
        c: Claimed = message.ref
        if not results:  # a sender that said nothing about it: retry later
            due = self.now + dt.timedelta(seconds=self.s.backoff_base)
            self._gather(Decision(c.id, "deferred", None, "no result from sender",
                                  next_attempt_at=due))
            return
        r = results[0]  # one recipient per message
        if r.status is Status.ACCEPTED:  # taken first, by code that cannot fail
            self._gather(Decision(c.id, "sent", r.code, r.text, r.provider_id))
            self.report.sent += 1
            self.consecutive = 0
            return
        try:
            decision = self.decide(c, r, self.now)
        except Exception as exc:  # noqa: BLE001 - raised again once the sessions are done
            # the policy failed: end the stream, but let the other sessions finish their
            # messages and keep every acceptance; this row stays 'sending' (ambiguous)
            self.crash = self.crash or exc
            return
        self._gather(decision)
        self.consecutive += 1
        self.last_error = f"{c.email}: {r.code or ''} {r.text}".strip()
        if decision.state == "rejected":
            self.report.rejected += 1
            self._end(PauseReason.MESSAGE_REJECTED, self.rejection_note(r, self.report))
        elif decision.state == "failed":
            self.report.failed += 1
        else:
            self.report.deferred += 1

    def failed(self, message: Outgoing, error: Exception) -> None:
        """Never on the wire (the session could not start): back to pending."""
        self.in_flight -= 1
        self.ledger.release([message.ref], str(error))
        self.last_error = str(error)
        if isinstance(error, SendPermanentError):
            self._end(PauseReason.SENDER_UNAVAILABLE, str(error))
            return
        self.consecutive += 1
        if self.consecutive < self.s.pause_after and not self.held:
            # the server or the network refuses: back off once for the messages out now
            retry_after = getattr(error, "retry_after", None)
            wait = min(retry_after or self.s.backoff_base, 30.0) * self.rng.uniform(0.5, 1.0)
            self.hold_until = self.monotonic() + wait
            self.held = True
            self.sleep(wait)

    # -- the run -------------------------------------------------------------------

    def run(self, sender: object) -> None:
        """Stream until the feed ends (stop, pause, quota, budget) or a pass finds nothing
        to claim and nothing due soon. Records and releases what is left in any case."""
        from pbtp_mailer.senders.base import stream_via

        try:
            for _ in range(10**6):  # bounded: a pass that hands nothing out ends the loop
                before = self.handed_out
                stream_via(sender, self)  # type: ignore[arg-type]
                if self.crash is not None:
                    raise self.crash
                if self.ended or self.handed_out == before:
                    break
        finally:
            self.finish()

    # -- after the stream --------------------------------------------------------

    def finish(self) -> None:
        """Record what is gathered; rows claimed or marked but never handed out go back."""
        self.ledger.finish(self.decisions)
        self.decisions = []
        if self.fleet.lost:
            self.reserved.clear()  # no longer ours: another worker may hold them now
        back = list(self.ready) + list(self.reserved)
        self.ready.clear()
        self.reserved.clear()
        self.ledger.release(back, "released: the run stopped before sending it")

    # -- inside ------------------------------------------------------------------

    def _running(self) -> bool:
        why = self.stop()
        if why:
            self.report.stopped = why
            self.ended = True
            return False
        if not self.fleet.tick(self.report.sent, self.dispatch.id):
            self.report.stopped = self.fleet.lost
            self.ended = True
            return False
        return True

    def _refill(self) -> float | None:
        """No row ready: wait for a group of replies, or record them and mark the next rows
        'sending' (as many as sessions are idle). A float: pause; None: rows are ready,
        or (``ready`` still empty) nothing is left to claim and nothing is due soon."""
        if self.decisions and self.in_flight:
            age = self.monotonic() - self.first_reply_at
            if len(self.decisions) < self.s.group and age < self.s.group_seconds:
                return self.s.group_seconds - age
        self.now = self.clock()
        idle = max(1, self.s.sessions - self.in_flight)
        if self.budget is not None:
            if self.budget <= 0:
                self.ended = True
                return None
            idle = min(idle, self.budget)
        # the rate's tokens first: a row is marked 'sending' only when it may go at once
        tokens = self.fleet.poll(idle)
        if isinstance(tokens, float):
            self.ledger.finish(self.decisions)  # record what is gathered while we wait
            self.decisions = []
            return tokens
        if not tokens:
            self.report.quota = self.fleet.quota
            self.ended = True
            return None
        idle = tokens
        if len(self.reserved) < idle:
            self._reserve()
        if not self.reserved and self.fleet.rescue(self.dispatch.id):
            self._reserve()  # a dead worker's claimed rows are pending again: claim them
        if not self.reserved:
            self.fleet.unspend(tokens)
            self.ledger.finish(self.decisions)
            self.decisions = []
            return self._nothing_left()
        batch = [self.reserved.popleft() for _ in range(min(idle, len(self.reserved)))]
        self.fleet.unspend(tokens - len(batch))
        sending = self.ledger.begin_send(self.owner, batch, self.decisions, list_id=self.list_id)
        self.decisions = []
        self.report.skipped += len(batch) - len(sending)
        self.fleet.unspend(len(batch) - len(sending))
        self.ready.extend(sending)
        if self.on_progress:
            self.on_progress(self.report)
        return None

    def _reserve(self) -> None:
        want = self.s.chunk if self.budget is None else min(self.s.chunk, self.budget)
        step = self.ledger.reserve(self.dispatch, self.owner, want, list_id=self.list_id,
                                   decisions=self.decisions)
        self.decisions = []
        self.report.skipped += step.skipped
        self.reserved.extend(step.claimed)

    def _nothing_left(self) -> float | None:
        """Nothing to claim now: wait for deferred rows due soon, else this session ends
        (the others end when they find the same; the last in-flight reply may still
        defer a row due soon, which the session that records it waits for)."""
        due = self.ledger.next_due(self.dispatch.id)
        if due is not None:
            wait = (due - self.clock()).total_seconds()
            if wait <= self.s.in_run_wait:
                return max(0.0, wait) + 0.001
        return None

    def _gather(self, o: Decision) -> None:
        if not self.decisions:
            self.first_reply_at = self.monotonic()
        self.decisions.append(o)

    def _check_pause(self) -> None:
        if self.consecutive >= self.s.pause_after:
            self._end(PauseReason.CONSECUTIVE_FAILURES,
                      f"{self.consecutive} consecutive failures; last: {self.last_error}")

    def _end(self, reason: PauseReason, note: str) -> None:
        """Pause the dispatch (the first reason wins); every session ends."""
        self._pause(reason, note)
        self.ended = True
