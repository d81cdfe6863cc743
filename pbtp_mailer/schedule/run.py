"""One ``dispatch-due`` run: the due dispatches, then the deferred retries.

``run_due`` takes the lock, opens the store and runs a ``DueRunner``: every
due or sending (issue, list) of the scheduled issues goes through
``plan_dispatch`` + ``Dispatcher`` (resume semantics), then earlier
dispatches whose deferred rows have come due are retried (only rows already
in the ledger: nobody who subscribed since gets an old issue). What is due
and what is stale is decided in ``state.py``. Dispatch state comes from the
``Ledger`` the store hands out; a paused run's report is logged (``sent``)
like any other before its pause is reported.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pbtp_mailer.errors import MailerError
from pbtp_mailer.schedule.state import (
    Clock,
    Scheduled,
    SenderFactory,
    classify,
    find_scheduled,
    held,
    note_due,
    show_time,
    utc,
)

if TYPE_CHECKING:
    from pbtp_mailer.config import Config
    from pbtp_mailer.dispatch.dispatcher import Dispatcher, DispatchReport
    from pbtp_mailer.schedule.runlog import RunLog
    from pbtp_mailer.store import Store
    from pbtp_mailer.store.ledger import Ledger

__all__ = ["LOCK_FILE", "DueReport", "DueRunner", "run_due"]

LOCK_FILE = "dispatch-due.lock"


@dataclass
class DueReport:
    reports: list[DispatchReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    stopped: str | None = None

    @property
    def exit_code(self) -> int:
        return 1 if self.problems or self.stopped else 0


class DueRunner:
    """One ``dispatch-due`` run (the caller holds the lock)."""

    def __init__(self, config: Config, store: Store, issues_dir: Path, *, clock: Clock,
                 log: RunLog, sleep: Callable[[float], None] = time.sleep,
                 sender_factory: SenderFactory | None = None,
                 schedule_clock: Clock | None = None, skip_doctor: bool = False) -> None:
        self.config, self.store, self.issues_dir = config, store, issues_dir
        self.skip_doctor = skip_doctor
        self.clock, self.log, self.sleep = clock, log, sleep
        #: what is due and what is stale is judged on this clock (``--now``); the ledger
        #: (sent_at, heartbeats that tell live dispatchers from dead ones) keeps ``clock``
        self.schedule_clock = schedule_clock or clock
        self.sender_factory = sender_factory
        self.window = dt.timedelta(hours=config.dispatch.stale_after_hours)
        self.zone = ZoneInfo(config.newsletter.timezone)
        self._current: Dispatcher | None = None
        self._stop: str | None = None

    def _ledger(self) -> Ledger:
        return self.store.ledger(self.clock,
                                 message_id_domain=self.config.newsletter.message_id_domain)

    def stop(self, why: str = "interrupted by a signal") -> None:
        self._stop = why
        if self._current is not None:
            self._current.stop(why)

    def run(self) -> DueReport:
        """Every due (issue, list), then the deferred retries of earlier dispatches."""
        out = DueReport()
        items, problems = find_scheduled(self.issues_dir, self.config)
        for p in problems:
            self._problem(out, p, "invalid")
        handled: set[tuple[str, str]] = set()
        ledger = self._ledger()
        pairs = ((item, name) for item in items for name in item.lists)
        for item, name in pairs:
            if self._stop:
                break
            if self._scheduled(out, ledger, item, name):
                handled.add((item.issue.id, name))
        if not self._stop:
            self._retries(out, handled)
        if self._stop:
            out.stopped = self._stop
            self._problem(out, f"dispatch-due stopped: {self._stop}; the next run continues",
                          "stopped")
        return out

    def _scheduled(self, out: DueReport, ledger: Ledger, item: Scheduled, name: str) -> bool:
        """Send, resume, hold or report one scheduled (issue, list); True when this run
        dealt with it (its deferred rows are then not retried again below)."""
        now = self.schedule_clock()
        found = ledger.find(item.issue.id, name)
        dispatch = found[0] if found else None
        state = classify(item.send_at, dispatch, now, self.window)
        if state in ("upcoming", "done"):
            return False
        if state == "sending" and item.send_at > now:
            return False  # started by hand before its time: only deferred retries (below)
        if dispatch is not None and held(dispatch):
            self._problem(out, (
                f"{item.issue.id} -> {name}: paused: {dispatch.note}; not resumed by "
                f"cron: fix the cause, then resume with pbtp-mailer send {item.path} "
                f"--list {name}"), "paused", item.issue.id, name)
            return True
        first, moved = note_due(ledger, item, now)
        if moved:
            self.log.event("rescheduled", issue=item.issue.id,
                           send_at=item.send_at.strftime("%Y-%m-%dT%H:%M:%SZ"))
        if state == "stale":
            self._stale(out, item, name, now, first)
            return False
        fresh = now - item.send_at <= self.window
        self._dispatch(out, item.path, item.issue.id, name, item.sender,
                       enqueue_new=fresh, why="due" if dispatch is None else "resume")
        return True

    def _stale(self, out: DueReport, item: Scheduled, name: str, now: dt.datetime,
               first: dt.datetime) -> None:
        """Report a due issue too old for cron to send (a person decides)."""
        late = (now - item.send_at).total_seconds() / 3600
        self._problem(out, (
            f"{item.issue.place('schedule', 'send_at')}: schedule.send_at: "
            f"not sent to '{name}': {show_time(item.send_at, self.zone)} is "
            f"{late:.1f} h past (stale_after_hours = "
            f"{self.config.dispatch.stale_after_hours:g}; first seen due "
            f"{utc(first)}); send it by hand (pbtp-mailer send {item.path} --list "
            f"{name}) or move send_at"), "stale", item.issue.id, name)

    def _retries(self, out: DueReport, handled: set[tuple[str, str]]) -> None:
        """Earlier dispatches with nothing pending and deferred rows now due."""
        ledger = self._ledger()
        for d in ledger.running():
            if self._stop or (d.issue_id, d.list_name) in handled:
                continue
            counts = ledger.counts(d.id)
            due = ledger.next_due(d.id)
            if counts["pending"] or counts["claimed"] or due is None or due > self.clock():
                continue
            path = Path(d.issue_file)
            if not path.is_absolute() and not path.exists():
                path = self.config.base_dir / path
            self._dispatch(out, path, d.issue_id, d.list_name, d.sender, enqueue_new=False,
                           why="retry")

    def _dispatch(self, out: DueReport, path: Path, issue_id: str, list_name: str,
                  sender: str | None, *, enqueue_new: bool, why: str) -> None:
        from pbtp_mailer.dispatch.dispatcher import Dispatcher, DispatchOptions, plan_dispatch
        from pbtp_mailer.feedback.gate import cron_gate

        options = DispatchOptions(list_name=list_name, sender=sender, enqueue_new=enqueue_new)
        try:
            plan = plan_dispatch(path, self.config, self.store, options)
            if plan.issue.id != issue_id:
                raise MailerError(f"{path}: now holds issue '{plan.issue.id}', not '{issue_id}'")
            if why == "due":  # the doctor gate: a new large dispatch waits for failing checks
                from pbtp_mailer.doctor import gate_dispatch

                for note in gate_dispatch(self.config, sender, plan.recipients,
                                          skip=self.skip_doctor):
                    self.log.event("doctor", issue=issue_id, list=list_name, msg=note)
            if why == "due":  # the complaint-rate gate (feedback/gate.py)
                cron_gate(self.store, self.config, warn=lambda m: self._problem(
                    out, f"{issue_id} -> {list_name}: {m}", "warning", issue_id, list_name))
            if why != "resume":
                self.log.event("dispatch", issue=issue_id, list=list_name, why=why,
                               sender=plan.sender_name, recipients=plan.recipients)
            built = self.sender_factory(sender) if self.sender_factory else None
            self._current = Dispatcher(plan, options, sender=built, ledger=self._ledger(),
                                       clock=self.clock, sleep=self.sleep)
            if self._stop:
                return
            report = self._current.run()
        except MailerError as exc:
            hint = f" ({exc.hint})" if exc.hint else ""
            text = str(exc).replace("\n", "; ")
            self._problem(out, f"{issue_id} -> {list_name}: {text}{hint}", "error",
                          issue_id, list_name)
            return
        finally:
            self._current = None
        out.reports.append(report)
        self._log_sent(report, why)
        if report.paused:
            self._problem(out, f"{issue_id} -> {list_name}: {report.pause_message} (fix the "
                               "cause, then run the same command again to resume)",
                          "error", issue_id, list_name)
        if report.failed:
            self._problem(out, f"{issue_id} -> {list_name}: {report.failed} recipients failed "
                               f"permanently (pbtp-mailer status {path} --recipients failed)",
                          "failed", issue_id, list_name)
        if report.ambiguous:
            self._problem(out, (
                f"{issue_id} -> {list_name}: {report.ambiguous} recipients were being sent "
                "when an earlier run stopped; whether they got it is unknown (pbtp-mailer "
                f"status {path}; resend with pbtp-mailer send {path} --list {list_name} "
                "--resend-unknown)"), "ambiguous", issue_id, list_name)

    def _log_sent(self, report: DispatchReport, why: str) -> None:
        """One ``sent`` event per run, paused or not; a resume that only finds rows waiting
        for their retry time (or for a person) logs nothing: it happens every few minutes."""
        c = report.counts
        state = "done" if not report.remaining and not c.get("sending") else "incomplete"
        if report.stopped:
            state = "stopped"
        elif report.paused:
            state = "paused"
        busy = (report.sent + report.failed + report.deferred + report.skipped + report.enqueued
                + report.header_refused + report.rejected)
        if why != "resume" or busy or report.stopped or report.paused or state == "done":
            self.log.event("sent", issue=report.issue_id, list=report.list_name,
                           sent=report.sent, failed=report.failed, deferred=report.deferred,
                           skipped=report.skipped, remaining=report.remaining,
                           ambiguous=report.ambiguous, state=state,
                           elapsed=f"{report.elapsed:.1f}", why=why, quota=report.quota,
                           paused=report.pause_reason.value if report.pause_reason else None)

    def _problem(self, out: DueReport, line: str, event: str, issue: str | None = None,
                 list_name: str | None = None) -> None:
        line = " ".join(line.splitlines())  # server texts may hold line breaks: one line each
        out.problems.append(line)
        self.log.event(event, issue=issue, list=list_name, msg=line)


def run_due(config: Config, *, issues_dir: Path | None = None, clock: Clock | None = None,
            schedule_clock: Clock | None = None, log: RunLog | None = None,
            sleep: Callable[[float], None] = time.sleep,
            sender_factory: SenderFactory | None = None,
            on_start: Callable[[DueRunner], None] | None = None,
            skip_doctor: bool = False) -> DueReport:
    """One cron run: take the lock (``LockBusyError`` if held), open the store, run.

    ``clock`` is the time of the ledger and the log (default: the wall
    clock); ``schedule_clock`` the time at which due and stale are judged
    (default: ``clock``; ``--now`` sets only this one, so a catch-up run
    never writes invented times into the ledger or looks like a dead
    dispatcher to a live one). ``on_start`` gets the runner before it
    starts (the CLI hooks signals to its ``stop``).
    """
    from pbtp_mailer.schedule.lock import RunLock
    from pbtp_mailer.schedule.runlog import RunLog
    from pbtp_mailer.store import Store

    clock = clock or (lambda: dt.datetime.now(dt.UTC))
    log = log or RunLog(None, clock)
    lock = RunLock(config.data_dir / LOCK_FILE)
    try:
        lock.acquire()
    except MailerError as exc:
        log.event("locked", msg=str(exc))
        raise
    try:
        if lock.took_over is not None:
            log.event("lock-takeover", msg=f"previous holder died holding it: {lock.took_over}")
        with Store.open(config, clock=clock) as store:
            runner = DueRunner(config, store, issues_dir or config.base_dir / "issues",
                               clock=clock, log=log, sleep=sleep, sender_factory=sender_factory,
                               schedule_clock=schedule_clock, skip_doctor=skip_doctor)
            if on_start is not None:
                on_start(runner)
            return runner.run()
    finally:
        lock.release()
