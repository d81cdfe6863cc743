"""Dispatch: claim -> personalise -> send -> record, with the policy senders lack.

The dispatcher owns every decision: how many messages per batch (the
sender's concurrency, the rate limit), what a failure means (transient ->
``deferred`` with exponential backoff and jitter, until ``max_attempts`` or
``max_age_hours``; permanent -> ``failed`` and, by policy, the address
suppressed as bounced), and when to stop (too many consecutive failures
pause the dispatch with one error instead of burning through the list).

The issue is composed once; each recipient's bytes come from the message
template in microseconds. Re-running resumes: ``sent`` and ``failed`` rows
are never sent again, rows left ``sending`` by a crash are reported as
ambiguous and resent only with ``resend_unknown``.
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
from pbtp_mailer.errors import DispatchPausedError, HeaderError, SendPermanentError, SendTransientError

if TYPE_CHECKING:
    from pbtp_mailer.senders.base import Sender, SendResult
    from pbtp_mailer.store.ledger import Claimed, DispatchInfo, Ledger, Outcome

__all__ = ["DispatchOptions", "DispatchReport", "Plan", "Dispatcher", "plan_dispatch",
           "dry_run", "DryRun", "Personaliser",
           "EXIT_OK", "EXIT_FAILED", "EXIT_PAUSED", "EXIT_INCOMPLETE"]

EXIT_OK = 0
EXIT_FAILED = 3  # some recipients failed permanently
EXIT_PAUSED = 4  # paused: too many consecutive failures, or interrupted
EXIT_INCOMPLETE = 5  # deferred or ambiguous rows remain; a later run continues

Clock = Callable[[], dt.datetime]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class DispatchReport:
    issue_id: str
    list_name: str
    sender: str
    sent: int = 0
    failed: int = 0
    deferred: int = 0
    skipped: int = 0
    header_refused: int = 0
    requeued_unknown: int = 0
    enqueued: int = 0
    ambiguous: int = 0
    paused: str | None = None
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
        return self.counts.get("pending", 0) + self.counts.get("deferred", 0) + self.ambiguous

    @property
    def exit_code(self) -> int:
        if self.paused or self.stopped:
            return EXIT_PAUSED
        if self.failed:
            return EXIT_FAILED
        if self.remaining:
            return EXIT_INCOMPLETE
        return EXIT_OK


class Dispatcher:
    def __init__(self, plan: Plan, options: DispatchOptions, *,
                 sender: Sender | None = None, clock: Clock = _utcnow,
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None,
                 on_progress: Callable[[DispatchReport], None] | None = None) -> None:
        from pbtp_mailer.store.ledger import Ledger, new_owner

        self.plan = plan
        self.options = options
        self.config = plan.config
        self.settings = plan.config.dispatch
        self.clock = clock
        self.sleep = sleep
        self.monotonic = monotonic
        self.rng = rng or random.Random()
        self.on_progress = on_progress
        self.ledger: Ledger = Ledger(plan.store.engine, clock=clock,
                                     message_id_domain=plan.config.newsletter.message_id_domain)
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

    # -- policy -------------------------------------------------------------

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        s = self.settings
        delay = min(s.backoff_max_seconds, s.backoff_base_seconds * 2 ** max(0, attempts - 1))
        delay *= self.rng.uniform(0.5, 1.5)
        if retry_after:
            delay = max(delay, retry_after)
        return delay

    def _decide(self, c: Claimed, r: SendResult, now: dt.datetime) -> Outcome:
        from pbtp_mailer.senders.base import Status
        from pbtp_mailer.store.ledger import Outcome

        if r.status is Status.ACCEPTED:
            return Outcome(c.id, "sent", r.code, r.text, r.provider_id)
        if r.status is Status.TRANSIENT:
            age_h = (now - c.first_attempt_at).total_seconds() / 3600
            if c.attempts >= self.settings.max_attempts or age_h >= self.settings.max_age_hours:
                return Outcome(c.id, "failed", r.code,
                               f"gave up after {c.attempts} attempts: {r.text}", r.provider_id)
            due = now + dt.timedelta(seconds=self._backoff(c.attempts, r.retry_after))
            return Outcome(c.id, "deferred", r.code, r.text, r.provider_id, next_attempt_at=due)
        suppress = "bounced" if self.settings.suppress_on_permanent else None
        return Outcome(c.id, "failed", r.code, r.text, r.provider_id, suppress_as=suppress,
                       email=c.email)

    # -- the loop -------------------------------------------------------------

    def run(self) -> DispatchReport:
        plan, opts, ledger = self.plan, self.options, self.ledger
        r = plan.rendition
        dispatch: DispatchInfo = ledger.open_dispatch(
            issue_id=plan.issue.id, ml=plan.mailing_list, issue_file=plan.issue_file,
            sender=plan.sender_name, subject=r.subject, preheader=r.preheader,
            language=r.language, text=r.text, html=r.html, accept_changes=opts.accept_changes)
        report = DispatchReport(plan.issue.id, plan.mailing_list.name, plan.sender_name,
                                started=self.monotonic())
        if opts.enqueue_new:
            report.enqueued = ledger.enqueue(dispatch, plan.mailing_list.id)
        if opts.resend_unknown:
            report.requeued_unknown = ledger.requeue_unknown(dispatch.id)
        personaliser = Personaliser(plan.template, self.config)
        sender = self._build_sender()
        limits = plan.limits
        windows = limits.windows
        in_run_wait = (opts.in_run_retry_seconds if opts.in_run_retry_seconds is not None
                       else self.settings.in_run_retry_seconds)
        mail_from = self.config.newsletter.from_address
        ledger.register(self.owner)
        if dispatch.state == "paused":
            ledger.set_state(dispatch.id, "running", "")
        ledger.release_dead_claims(dispatch.id)
        outcomes: list[Outcome] = []
        reserved: deque[Claimed] = deque()
        consecutive = 0
        budget = opts.limit
        try:
            with sender:
                batch_size = max(1, int(getattr(sender, "batch_size", 1) or 1))
                chunk = max(batch_size * 16, 128)
                bucket = (TokenBucket(limits.per_second, burst=min(batch_size, limits.per_second),
                                      clock=self.monotonic, sleep=self.sleep)
                          if limits.per_second else None)
                for _ in range(10**9):  # bounded by rows, attempts, budget and stop
                    if self._stop:
                        report.stopped = self._stop
                        break
                    if budget is not None and budget <= 0:
                        break
                    if not reserved:
                        step = ledger.reserve(dispatch, self.owner,
                                              chunk if budget is None else min(chunk, budget),
                                              list_id=plan.mailing_list.id, outcomes=outcomes)
                        outcomes = []
                        report.skipped += step.skipped
                        reserved.extend(step.claimed)
                        if not reserved:
                            due = ledger.next_due(dispatch.id)
                            now = self.clock()
                            if due is not None and (due - now).total_seconds() <= in_run_wait:
                                self.sleep(max(0.0, (due - now).total_seconds()) + 0.001)
                                continue
                            break
                    want = min(batch_size, len(reserved))
                    if budget is not None:
                        want = min(want, budget)
                    if windows:
                        used = ledger.usage(plan.sender_name, windows)
                        room = min(limit - used[w] for w, limit in windows.items())
                        if room <= 0:
                            full = next(w for w, lim in windows.items() if used[w] >= lim)
                            report.quota = (f"sender '{plan.sender_name}' reached its "
                                            f"per-{full} limit ({windows[full]})")
                            break
                        want = min(want, room)
                    if bucket is not None:
                        want = bucket.take(want)
                    batch = [reserved.popleft() for _ in range(want)]
                    sending = ledger.begin_send(self.owner, batch, outcomes,
                                                list_id=plan.mailing_list.id,
                                                rate_windows=windows,
                                                sender_name=plan.sender_name)
                    report.skipped += len(batch) - len(sending)
                    batch = sending
                    outcomes, consecutive = self._send(sender, batch, personaliser,
                                                       mail_from, report, consecutive)
                    if budget is not None:
                        budget -= len(batch)
                    if self.on_progress:
                        self.on_progress(report)
                    if consecutive >= self.settings.pause_after_consecutive_failures:
                        report.paused = (f"{consecutive} consecutive failures; "
                                         f"last: {self._last_error}")
                        break
        except (SendPermanentError, SendTransientError) as exc:
            # raised by open() (server down, TLS, credentials) or a batch-level refusal
            report.paused = str(exc)
        finally:
            ledger.finish(outcomes)
            ledger.release(list(reserved), "released: the run stopped before sending it")
            ledger.unregister(self.owner)
        report.counts = ledger.counts(dispatch.id)
        report.ambiguous = len(ledger.ambiguous(dispatch.id))
        report.finished = self.monotonic()
        if report.paused:
            ledger.set_state(dispatch.id, "paused", report.paused)
            raise DispatchPausedError(
                f"dispatch of {plan.issue.id} to '{plan.mailing_list.name}' paused: "
                f"{report.paused}",
                hint="fix the cause, then run the same command again to resume") from None
        if not report.remaining and not report.counts.get("sending"):
            ledger.set_state(dispatch.id, "done")
        return report

    _last_error = ""

    def _send(self, sender: Sender, claimed: Sequence[Claimed], personaliser: Personaliser,
              mail_from: str, report: DispatchReport,
              consecutive: int) -> tuple[list[Outcome], int]:
        from pbtp_mailer.senders.base import Outgoing
        from pbtp_mailer.store.ledger import Outcome

        now = self.clock()
        outcomes: list[Outcome] = []
        batch: list[Outgoing] = []
        for c in claimed:
            try:
                data = personaliser.message(c, now)
            except HeaderError as exc:
                outcomes.append(Outcome(c.id, "failed", None, f"refused before sending: {exc}"))
                report.header_refused += 1
                report.failed += 1
                continue
            batch.append(Outgoing(self.plan.envelope_sender(c.id, mail_from), (c.email,), data,
                                  ref=c, dot_safe=True))
        if not batch:
            return outcomes, consecutive
        try:
            results = sender.send(batch)
        except SendTransientError as exc:
            self.ledger.release([o.ref for o in batch], str(exc))
            self._last_error = str(exc)
            wait = exc.retry_after or min(30.0, self.settings.backoff_base_seconds)
            self.sleep(min(wait, 30.0) * self.rng.uniform(0.5, 1.0))
            return outcomes, consecutive + len(batch)
        except SendPermanentError:
            self.ledger.release([o.ref for o in batch], "sender refused the batch")
            raise
        seen: set[int] = set()
        for res in results:
            c = res.message.ref
            if c.id in seen:  # one result per recipient; we send one recipient per message
                continue
            seen.add(c.id)
            o = self._decide(c, res, now)
            outcomes.append(o)
            if o.state == "sent":
                report.sent += 1
                consecutive = 0
            else:
                consecutive += 1
                self._last_error = f"{c.email}: {res.code or ''} {res.text}".strip()
                if o.state == "failed":
                    report.failed += 1
                else:
                    report.deferred += 1
        missing = [m.ref for m in batch if m.ref.id not in seen]
        for c in missing:  # a sender that said nothing about a message: retry it later
            outcomes.append(Outcome(c.id, "deferred", None, "no result from sender",
                                    next_attempt_at=now + dt.timedelta(
                                        seconds=self._backoff(c.attempts, None))))
        return outcomes, consecutive
