"""Dispatch: claim -> personalise -> send -> record, with the policy senders lack.

The dispatcher owns every decision: how fast (the sender's rate and quotas,
shared with every other worker through the store: ``fleet.py``), what a
failure means (transient -> ``deferred`` with exponential backoff and
jitter, until ``max_attempts`` or ``max_age_hours``; permanent -> ``failed``
and, by policy, the address suppressed as bounced; the message itself
rejected -> ``rejected``, nobody suppressed, the run paused for a person),
and when to stop (too many consecutive failures pause the dispatch instead
of burning through the list).

The issue is composed once; each recipient's bytes come from the message
template in microseconds. Sending streams (``stream.py``): each free session
takes the next recipient at once; replies are recorded in grouped writes.
Re-running resumes: ``sent`` and ``failed`` rows are never sent again, rows
left ``sending`` by a crash are reported as ambiguous and resent only with
``resend_unknown``. A run that pauses or stops returns its report like any
other; the reason is stored as a ``PauseReason`` on the dispatch.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pbtp_mailer.dispatch.fleet import Fleet
from pbtp_mailer.dispatch.plan import DispatchOptions, DryRun, Personaliser, Plan, dry_run, plan_dispatch
from pbtp_mailer.dispatch.ratelimit import RATE_KEYS
from pbtp_mailer.dispatch.report import (
    EXIT_FAILED,
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_PAUSED,
    DispatchReport,
)
from pbtp_mailer.dispatch.stream import FeedSettings, LedgerFeed
from pbtp_mailer.errors import SendPermanentError, SendTransientError
from pbtp_mailer.senders.base import Status
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
    """One run's state between its steps (the stream's own state is in ``LedgerFeed``)."""

    dispatch: DispatchInfo
    report: DispatchReport
    personaliser: Personaliser
    budget: int | None  # messages this run may still send (``--limit``)
    in_run_wait: float  # deferred rows due within this many seconds are waited for
    feed: LedgerFeed | None = None


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
        """Ask the run to stop after the messages on the wire (signal handlers call this)."""
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
        fleet = Fleet(self.ledger, self.owner, sender_name=self.plan.sender_name,
                      limits=self.plan.limits, sleep=self.sleep)
        self._take_over(run, fleet)
        try:
            with sender:
                run.feed = self._feed(run, sender, fleet)
                run.feed.run(sender)
        except (SendPermanentError, SendTransientError) as exc:
            # raised by open() (server down, TLS, credentials)
            self._pause(run, PauseReason.SENDER_UNAVAILABLE, str(exc))
        finally:
            self._settle(run, fleet)
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

    def _take_over(self, run: _Run, fleet: Fleet) -> None:
        """Announce this runner, resume a paused dispatch, free rows dead runs had claimed."""
        self.ledger.register(self.owner)
        fleet.start(issue_id=self.plan.issue.id, list_name=self.plan.mailing_list.name)
        if run.dispatch.state == "paused":
            self.ledger.set_state(run.dispatch.id, "running", "")
        self.ledger.release_dead_claims(run.dispatch.id)

    def _feed(self, run: _Run, sender: Sender, fleet: Fleet) -> LedgerFeed:
        """The stream's feed: sessions (the sender's concurrency, or its batch size) bound
        the rows ``sending`` at once; reservations of 16 of those."""
        sessions = max(1, int(getattr(sender, "batch_size", 1) or 1))
        settings = FeedSettings(
            sessions=sessions, chunk=max(sessions * 16, 128),
            pause_after=self.settings.pause_after_consecutive_failures,
            in_run_wait=run.in_run_wait, backoff_base=self.settings.backoff_base_seconds)
        return LedgerFeed(
            ledger=self.ledger, dispatch=run.dispatch, owner=self.owner,
            list_id=self.plan.mailing_list.id, personaliser=run.personaliser,
            mail_from=self.config.newsletter.from_address,
            envelope_sender=self.plan.envelope_sender, fleet=fleet, decide=self._decide,
            pause=lambda reason, note: self._pause(run, reason, note),
            rejection_note=_rejection_note, report=run.report, settings=settings,
            budget=run.budget, stop=lambda: self._stop, clock=self.clock,
            monotonic=self.monotonic, sleep=self.sleep, rng=self.rng,
            on_progress=self.on_progress)

    def _pause(self, run: _Run, reason: PauseReason, note: str) -> None:
        """End the run as paused (the first reason wins)."""
        if run.report.pause_reason is None:
            run.report.paused, run.report.pause_reason = note, reason

    def _settle(self, run: _Run, fleet: Fleet) -> None:
        """However the stream ended: write what is decided, give back rows never sent (the
        feed does both), give back unspent rate tokens, sign off."""
        try:
            if run.feed is not None:
                run.feed.finish()
        finally:
            self.ledger.unregister(self.owner)
            fleet.close()

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
