"""Dispatch: claim -> personalise -> send -> record, with the policy senders lack.

The dispatcher owns every decision: how many messages per batch (the
sender's concurrency, the rate limit), what a failure means (transient ->
``deferred`` with exponential backoff and jitter, until ``max_attempts`` or
``max_age_hours``; permanent -> ``failed`` and, by policy, the address
suppressed as bounced; the message itself rejected -> ``rejected``, nobody
suppressed, the run paused for a person), and when to stop (too many
consecutive failures pause the dispatch instead of burning through the list).

The issue is composed once; each recipient's bytes come from the message
template in microseconds. Re-running resumes: ``sent`` and ``failed`` rows
are never sent again, rows left ``sending`` by a crash are reported as
ambiguous and resent only with ``resend_unknown``. A run that pauses or
stops returns its report like any other; the reason is stored as a
``PauseReason`` on the dispatch.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pbtp_mailer.dispatch.plan import DispatchOptions, DryRun, Personaliser, Plan, dry_run, plan_dispatch
from pbtp_mailer.dispatch.ratelimit import RATE_KEYS, TokenBucket
from pbtp_mailer.dispatch.report import (
    EXIT_FAILED,
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_PAUSED,
    DispatchReport,
)
from pbtp_mailer.errors import HeaderError, SendPermanentError, SendTransientError
from pbtp_mailer.senders.base import Outgoing, Status
from pbtp_mailer.store.ledger_types import Claimed, Decision, PauseReason

if TYPE_CHECKING:
    from pbtp_mailer.senders.base import Sender, SendResult
    from pbtp_mailer.store.ledger import DispatchInfo, Ledger

__all__ = ["DispatchOptions", "DispatchReport", "Plan", "Dispatcher", "plan_dispatch",
           "dry_run", "DryRun", "Personaliser", "PauseReason",
           "EXIT_OK", "EXIT_FAILED", "EXIT_PAUSED", "EXIT_INCOMPLETE"]

Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class _Run:
    """One run's state between its steps."""

    dispatch: DispatchInfo
    report: DispatchReport
    personaliser: Personaliser
    budget: int | None  # messages this run may still send (``--limit``)
    in_run_wait: float  # deferred rows due within this many seconds are waited for
    reserved: deque[Claimed] = field(default_factory=deque)
    #: decided but not yet written: recorded with the next reservation or batch, or at the end
    unrecorded: list[Decision] = field(default_factory=list)
    consecutive: int = 0  # failures since the last acceptance
    last_error: str = ""
    batch_size: int = 1
    chunk: int = 128  # rows reserved at once
    bucket: TokenBucket | None = None
    over: bool = False  # the loop's exit: set by the step that ends the run


class Dispatcher:
    """Sends one issue to one list through the ledger the store hands out."""

    def __init__(self, plan: Plan, options: DispatchOptions, *,
                 sender: Sender | None = None, ledger: Ledger | None = None,
                 clock: Clock = _utcnow,
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None,
                 on_progress: Callable[[DispatchReport], None] | None = None) -> None:
        from pbtp_mailer.store.runners import new_owner

        self.plan = plan
        self.options = options
        self.config = plan.config
        self.settings = plan.config.dispatch
        self.clock = clock
        self.sleep = sleep
        self.monotonic = monotonic
        self.rng = rng or random.Random()
        self.on_progress = on_progress
        self.ledger: Ledger = ledger or plan.store.ledger(
            clock, message_id_domain=plan.config.newsletter.message_id_domain)
        self.owner = new_owner()
        self._sender = sender
        self._stop: str | None = None

    def stop(self, why: str = "interrupted") -> None:
        """Ask the loop to stop after the batch on the wire (signal handlers call this)."""
        self._stop = why

    def _build_sender(self) -> Sender:
        if self._sender is not None:
            return self._sender
        from pbtp_mailer.senders.base import SenderSpec
        from pbtp_mailer.senders.registry import build_sender, sender_spec

        spec = sender_spec(self.options.sender, self.config)
        options = {k: v for k, v in spec.options.items() if k not in RATE_KEYS}
        spec = SenderSpec(spec.name, spec.kind, options, spec.environ, spec.base_dir)
        return build_sender(spec, concurrency=self.options.concurrency)

    # -- the loop -------------------------------------------------------------

    def run(self) -> DispatchReport:
        """Send what is due now. A run that pauses, stops or meets its quota returns its
        report too: ``paused``/``pause_reason``, ``stopped`` or ``quota`` say why."""
        run = self._start()
        sender = self._build_sender()
        self._take_over(run)
        try:
            with sender:
                self._size_batches(run, sender)
                while not run.over:
                    batch = self._next_batch(run)
                    if batch is None:
                        continue
                    self._send_batch(run, sender, batch)
                    self._after_batch(run)
        except (SendPermanentError, SendTransientError) as exc:
            # raised by open() (server down, TLS, credentials) or a batch-level refusal
            self._pause(run, PauseReason.SENDER_UNAVAILABLE, str(exc))
        finally:
            self._settle(run)
        return self._finish(run)

    def _frozen_headers(self) -> str:
        """From, Reply-To and List-Id as every copy carries them (frozen like the content)."""
        nl = self.config.newsletter
        return "\n".join((nl.from_addr, nl.reply_to or "", nl.list_id))

    def _start(self) -> _Run:
        """Open (or resume) the dispatch and queue its recipients."""
        plan, opts, ledger = self.plan, self.options, self.ledger
        r = plan.rendition
        dispatch = ledger.open_dispatch(
            issue_id=plan.issue.id, ml=plan.mailing_list, issue_file=plan.issue_file,
            sender=plan.sender_name, subject=r.subject, preheader=r.preheader,
            language=r.language, text=r.text, html=r.html, accept_changes=opts.accept_changes,
            headers=self._frozen_headers())
        report = DispatchReport(plan.issue.id, plan.mailing_list.name, plan.sender_name,
                                started=self.monotonic())
        if opts.enqueue_new:
            report.enqueued = ledger.enqueue(dispatch, plan.mailing_list.id)
        if opts.resend_unknown:
            report.requeued_unknown = ledger.requeue_unknown(dispatch.id)
        # a rejected message is tried again by the next run (cron holds such a dispatch)
        report.requeued_rejected = ledger.requeue_rejected(dispatch.id)
        wait = (opts.in_run_retry_seconds if opts.in_run_retry_seconds is not None
                else self.settings.in_run_retry_seconds)
        return _Run(dispatch, report, Personaliser(plan.template, self.config),
                    budget=opts.limit, in_run_wait=wait)

    def _take_over(self, run: _Run) -> None:
        """Announce this runner, resume a paused dispatch, free rows dead runs had claimed."""
        self.ledger.register(self.owner)
        if run.dispatch.state == "paused":
            self.ledger.set_state(run.dispatch.id, "running", "")
        self.ledger.release_dead_claims(run.dispatch.id)

    def _size_batches(self, run: _Run, sender: Sender) -> None:
        """Batches of the sender's concurrency, reservations of many batches, the rate bucket."""
        run.batch_size = max(1, int(getattr(sender, "batch_size", 1) or 1))
        run.chunk = max(run.batch_size * 16, 128)
        per_second = self.plan.limits.per_second
        if per_second:
            run.bucket = TokenBucket(per_second, burst=min(run.batch_size, per_second),
                                     clock=self.monotonic, sleep=self.sleep)

    # -- steps ------------------------------------------------------------------

    def _next_batch(self, run: _Run) -> list[Claimed] | None:
        """The rows to send now, marked ``sending`` (recording the last batch's decisions in
        the same transaction; rows suppressed meanwhile are left out). None when there is no
        batch this time: with ``run.over`` set when the run should end (stopped, ``--limit``
        spent, nothing due, quota reached), without it after waiting for a deferred row."""
        if self._stop:
            run.report.stopped = self._stop
            run.over = True
            return None
        if run.budget is not None and run.budget <= 0:
            run.over = True
            return None
        if not run.reserved and not self._reserve(run):
            return None
        want = self._room(run)
        if want <= 0:
            return None
        batch = [run.reserved.popleft() for _ in range(want)]
        plan = self.plan
        sending = self.ledger.begin_send(self.owner, batch, run.unrecorded,
                                         list_id=plan.mailing_list.id,
                                         rate_windows=plan.limits.windows,
                                         sender_name=plan.sender_name)
        run.unrecorded = []
        run.report.skipped += len(batch) - len(sending)
        if run.budget is not None:
            run.budget -= len(sending)
        return sending

    def _reserve(self, run: _Run) -> bool:
        """Claim the next rows due. False when there are none: the run ends, unless a
        deferred row comes due within ``in_run_retry_seconds`` (then it waits for it)."""
        n = run.chunk if run.budget is None else min(run.chunk, run.budget)
        step = self.ledger.reserve(run.dispatch, self.owner, n,
                                   list_id=self.plan.mailing_list.id, decisions=run.unrecorded)
        run.unrecorded = []
        run.report.skipped += step.skipped
        run.reserved.extend(step.claimed)
        if run.reserved:
            return True
        due = self.ledger.next_due(run.dispatch.id)
        now = self.clock()
        if due is not None and (due - now).total_seconds() <= run.in_run_wait:
            self.sleep(max(0.0, (due - now).total_seconds()) + 0.001)
        else:
            run.over = True
        return False

    def _room(self, run: _Run) -> int:
        """How many reserved rows may go now: batch size, ``--limit``, the sender's quota
        windows (a full one ends the run) and the per-second bucket."""
        want = min(run.batch_size, len(run.reserved))
        if run.budget is not None:
            want = min(want, run.budget)
        windows = self.plan.limits.windows
        if windows:
            used = self.ledger.usage(self.plan.sender_name, windows)
            room = min(limit - used[w] for w, limit in windows.items())
            if room <= 0:
                full = next(w for w, lim in windows.items() if used[w] >= lim)
                run.report.quota = (f"sender '{self.plan.sender_name}' reached its "
                                    f"per-{full} limit ({windows[full]})")
                run.over = True
                return 0
            want = min(want, room)
        if run.bucket is not None:
            want = run.bucket.take(want)
        return want

    def _send_batch(self, run: _Run, sender: Sender, batch: Sequence[Claimed]) -> None:
        """Personalise each row and hand the messages to the sender; a refusal of the whole
        batch puts the rows back (transient: counted as failures; permanent: raised)."""
        now = self.clock()
        messages = self._personalise(run, batch, now)
        if not messages:
            return
        try:
            results = sender.send(messages)
        except SendTransientError as exc:
            self.ledger.release([m.ref for m in messages], str(exc))
            run.last_error = str(exc)
            run.consecutive += len(messages)
            wait = exc.retry_after or min(30.0, self.settings.backoff_base_seconds)
            self.sleep(min(wait, 30.0) * self.rng.uniform(0.5, 1.0))
            return
        except SendPermanentError:
            self.ledger.release([m.ref for m in messages], "sender refused the batch")
            raise
        self._hear(run, messages, results, now)

    def _personalise(self, run: _Run, batch: Sequence[Claimed],
                     now: dt.datetime) -> list[Outgoing]:
        """Each row's message; a row whose data cannot go in a header fails here, unsent."""
        mail_from = self.config.newsletter.from_address
        messages = []
        for c in batch:
            try:
                data = run.personaliser.message(c, now)
            except HeaderError as exc:
                run.unrecorded.append(Decision(c.id, "failed", None,
                                               f"refused before sending: {exc}"))
                run.report.header_refused += 1
                run.report.failed += 1
                continue
            messages.append(Outgoing(self.plan.envelope_sender(c.id, mail_from), (c.email,), data,
                                     ref=c, dot_safe=True))
        return messages

    def _hear(self, run: _Run, messages: Sequence[Outgoing], results: Sequence[SendResult],
              now: dt.datetime) -> None:
        """Turn the sender's answers into decisions. Acceptances are taken first, by code
        that cannot fail, so a crash in the policy after them never leaves a row the server
        accepted ``sending`` (ambiguous: ``--resend-unknown`` would send it twice)."""
        first: dict[int, SendResult] = {}
        for res in results:  # one result per recipient; we send one recipient per message
            first.setdefault(res.message.ref.id, res)
        report = run.report
        for res in first.values():
            if res.status is Status.ACCEPTED:
                run.unrecorded.append(Decision(res.message.ref.id, "sent", res.code, res.text,
                                               res.provider_id))
                report.sent += 1
        rejected: SendResult | None = None
        for res in first.values():
            if res.status is Status.ACCEPTED:
                run.consecutive = 0
                continue
            c: Claimed = res.message.ref
            decision = self._decide(c, res, now)
            run.unrecorded.append(decision)
            run.consecutive += 1
            run.last_error = f"{c.email}: {res.code or ''} {res.text}".strip()
            if decision.state == "rejected":
                report.rejected += 1
                rejected = rejected or res
            elif decision.state == "failed":
                report.failed += 1
            else:
                report.deferred += 1
        for m in messages:  # a sender that said nothing about a message: retry it later
            if m.ref.id not in first:
                due = now + dt.timedelta(seconds=self._backoff(m.ref.attempts, None))
                run.unrecorded.append(Decision(m.ref.id, "deferred", None,
                                               "no result from sender", next_attempt_at=due))
        if rejected is not None:
            self._pause(run, PauseReason.MESSAGE_REJECTED, _rejection_note(rejected, report))

    def _after_batch(self, run: _Run) -> None:
        """Report progress; pause when recipients keep failing one after another."""
        if self.on_progress:
            self.on_progress(run.report)
        if run.consecutive >= self.settings.pause_after_consecutive_failures:
            self._pause(run, PauseReason.CONSECUTIVE_FAILURES,
                        f"{run.consecutive} consecutive failures; last: {run.last_error}")

    def _pause(self, run: _Run, reason: PauseReason, note: str) -> None:
        """End the run as paused (the first reason wins)."""
        if run.report.pause_reason is None:
            run.report.paused, run.report.pause_reason = note, reason
        run.over = True

    def _settle(self, run: _Run) -> None:
        """However the loop ended: write what is decided, give back rows never sent, sign off."""
        self.ledger.finish(run.unrecorded)
        run.unrecorded = []
        self.ledger.release(list(run.reserved), "released: the run stopped before sending it")
        run.reserved.clear()
        self.ledger.unregister(self.owner)

    def _finish(self, run: _Run) -> DispatchReport:
        """The ledger's counts in the report; the dispatch paused (with its reason) or done."""
        report, dispatch_id = run.report, run.dispatch.id
        report.counts = self.ledger.counts(dispatch_id)
        report.ambiguous = len(self.ledger.ambiguous(dispatch_id))
        report.finished = self.monotonic()
        if report.paused and report.pause_reason is not None:
            self.ledger.pause(dispatch_id, report.pause_reason, report.paused)
        elif not report.remaining and not report.counts.get("sending"):
            self.ledger.set_state(dispatch_id, "done")
        return report

    # -- policy -------------------------------------------------------------

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        s = self.settings
        delay = min(s.backoff_max_seconds, s.backoff_base_seconds * 2 ** max(0, attempts - 1))
        delay *= self.rng.uniform(0.5, 1.5)
        if retry_after:
            delay = max(delay, retry_after)
        return delay

    def _decide(self, c: Claimed, r: SendResult, now: dt.datetime) -> Decision:
        """What a refusal means for the row: retry later, give up (and suppress), or, for a
        message the server refused as such, keep it for a person without blaming anyone."""
        if r.status is Status.REJECTED:
            return Decision(c.id, "rejected", r.code, r.text, r.provider_id)
        if r.status is Status.TRANSIENT:
            age_h = (now - c.first_attempt_at).total_seconds() / 3600
            if c.attempts >= self.settings.max_attempts or age_h >= self.settings.max_age_hours:
                return Decision(c.id, "failed", r.code,
                                f"gave up after {c.attempts} attempts: {r.text}", r.provider_id)
            due = now + dt.timedelta(seconds=self._backoff(c.attempts, r.retry_after))
            return Decision(c.id, "deferred", r.code, r.text, r.provider_id, next_attempt_at=due)
        suppress = "bounced" if self.settings.suppress_on_permanent else None
        return Decision(c.id, "failed", r.code, r.text, r.provider_id, suppress_as=suppress,
                        email=c.email)


def _rejection_note(res: SendResult, report: DispatchReport) -> str:
    """The pause note of a rejected message: what the server said, and that nobody lost
    their subscription."""
    reply = f"{res.code or ''} {res.text}".strip()
    return (f"the server rejected the message itself ({reply}; to {res.recipient}); "
            f"no recipient was suppressed; {report.rejected} marked rejected are sent again "
            "by the next pbtp-mailer send once the issue is fixed")
