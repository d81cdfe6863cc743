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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pbtp_mailer.dispatch.fleet import Fleet
from pbtp_mailer.dispatch.plan import DispatchOptions, DryRun, Personaliser, Plan, dry_run, plan_dispatch
from pbtp_mailer.dispatch.ratelimit import RATE_KEYS
from pbtp_mailer.dispatch.stream import FeedSettings, LedgerFeed
from pbtp_mailer.errors import DispatchPausedError, SendPermanentError, SendTransientError

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
        fleet = Fleet(plan.store.engine, self.owner, sender_name=plan.sender_name,
                      limits=plan.limits, clock=self.clock, sleep=self.sleep)
        in_run_wait = (opts.in_run_retry_seconds if opts.in_run_retry_seconds is not None
                       else self.settings.in_run_retry_seconds)
        mail_from = self.config.newsletter.from_address
        ledger.register(self.owner)
        fleet.start(issue_id=plan.issue.id, list_name=plan.mailing_list.name)
        if dispatch.state == "paused":
            ledger.set_state(dispatch.id, "running", "")
        ledger.release_dead_claims(dispatch.id)
        feed: LedgerFeed | None = None
        try:
            with sender:
                sessions = max(1, int(getattr(sender, "batch_size", 1) or 1))
                feed = LedgerFeed(
                    ledger=ledger, dispatch=dispatch, owner=self.owner,
                    list_id=plan.mailing_list.id, personaliser=personaliser,
                    mail_from=mail_from, fleet=fleet, decide=self._decide, report=report,
                    settings=FeedSettings(
                        sessions=sessions, chunk=max(sessions * 16, 128),
                        pause_after=self.settings.pause_after_consecutive_failures,
                        in_run_wait=in_run_wait,
                        backoff_base=self.settings.backoff_base_seconds),
                    budget=opts.limit, stop=lambda: self._stop, clock=self.clock,
                    monotonic=self.monotonic, sleep=self.sleep, rng=self.rng,
                    on_progress=self.on_progress)
                feed.run(sender)
        except (SendPermanentError, SendTransientError) as exc:
            # raised by open() (server down, TLS, credentials)
            report.paused = str(exc)
        finally:
            ledger.unregister(self.owner)
            fleet.close()
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
