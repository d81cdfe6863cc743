"""Scheduled dispatch: which issues are due, the stale guard, and one cron run.

An issue is sent by cron only if its YAML has a ``schedule`` (``send_at``,
``lists``, optional ``sender``). ``send_at`` with an offset is absolute; a
local time is read in the configured ``newsletter.timezone``, where a time
skipped by a DST jump or repeated by a DST fall-back is an error naming its
``FILE:LINE:COL`` (repeated: the offset must be written).

Each (issue, list) is in one state, judged at ``now``::

    upcoming  send_at is later than now
    due       send_at has come, no dispatch yet, within the stale window
    stale     send_at has come, no dispatch yet, more than
              ``dispatch.stale_after_hours`` ago: never sent by cron; reported
              every run until a person runs ``pbtp-mailer send`` or moves the date
    sending   a dispatch exists and is not done (cron continues it)
    done      the dispatch is done

"A dispatch exists" is the ledger's word: ``send`` by hand creates one, so a
stale issue sent by hand is continued by cron like any other. The guard
compares with the clock rather than only with the first time cron saw the
issue due, so an issue that could not start in time (unknown list, missing
secret) does not go out days later once someone fixes the config.

``run_due`` is one cron run: every due or sending (issue, list) goes through
``plan_dispatch`` + ``Dispatcher`` (resume semantics), then earlier
dispatches whose deferred rows have come due are retried (only rows already
in the ledger: nobody who subscribed since gets an old issue).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from .errors import IssueError, MailerError, Problem

if TYPE_CHECKING:
    from .config import Config
    from .dispatch import Dispatcher, DispatchReport
    from .issue import Issue
    from .runlog import RunLog
    from .senders.base import Sender
    from .store import Store
    from .store.ledger import DispatchInfo

__all__ = ["Scheduled", "Entry", "ScheduleProblem", "DueReport", "DueRunner", "resolve_send_at",
           "schedule_problems", "find_scheduled", "classify", "schedule_entries",
           "offset_clock", "parse_now", "STATES"]

STATES = ("upcoming", "due", "sending", "done", "stale")
Clock = Callable[[], dt.datetime]


def _utc(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M") + "Z"


def show_time(t: dt.datetime, zone: ZoneInfo) -> str:
    """``2026-03-08 09:00 CDT (14:00Z)``"""
    local = t.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({t.astimezone(dt.UTC):%H:%M}Z)"


def resolve_send_at(issue: Issue, timezone: str) -> dt.datetime:
    """``schedule.send_at`` as an aware UTC time; ``IssueError`` for DST gaps and overlaps."""
    assert issue.schedule is not None
    value = issue.schedule.send_at
    if value.tzinfo is not None and value.utcoffset() is not None:
        return value.astimezone(dt.UTC)
    zone = ZoneInfo(timezone)
    early, late = value.replace(tzinfo=zone, fold=0), value.replace(tzinfo=zone, fold=1)
    shown = value.isoformat()
    message = None
    if early.utcoffset() != late.utcoffset():
        back = early.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None)
        if back != value:  # a time the clocks skip
            before = (early - dt.timedelta(hours=3)).astimezone(zone)
            after = (early + dt.timedelta(hours=3)).astimezone(zone)
            message = (f"{shown} does not exist in {timezone} (the clocks jump ahead from "
                       f"{before.tzname()} to {after.tzname()} that night); choose another time "
                       "or write the offset")
        else:  # a time that happens twice
            options = " or ".join(f"{shown}{_offset(t)} ({t.tzname()})" for t in (early, late))
            message = (f"{shown} happens twice in {timezone} (clocks go back that night); "
                       f"write the offset: {options}")
    if message:
        line, col = _line_col(issue.place("schedule", "send_at"))
        raise IssueError([Problem(issue.source_file, line, col, "schedule.send_at", message)])
    return early.astimezone(dt.UTC)


def _offset(t: dt.datetime) -> str:
    off = t.utcoffset() or dt.timedelta()
    sign = "-" if off < dt.timedelta() else "+"
    minutes = abs(int(off.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _line_col(place: str) -> tuple[int, int | None]:
    parts = place.rsplit(":", 2)
    return int(parts[1]), int(parts[2])


@dataclass(frozen=True)
class ScheduleProblem:
    """One finding of ``schedule_problems``: ``error`` blocks sending, ``warning`` informs."""

    severity: str
    problem: Problem

    def __str__(self) -> str:
        return str(self.problem)


def schedule_problems(issue: Issue, config: Config, now: dt.datetime) -> list[ScheduleProblem]:
    """What ``check`` should say about an issue's schedule at ``now`` (empty: nothing)."""
    if issue.schedule is None:
        return []
    try:
        send_at = resolve_send_at(issue, config.newsletter.timezone)
    except IssueError as exc:
        return [ScheduleProblem("error", p) for p in exc.problems]
    line, col = _line_col(issue.place("schedule", "send_at"))
    zone = ZoneInfo(config.newsletter.timezone)
    window = dt.timedelta(hours=config.dispatch.stale_after_hours)
    if send_at > now:
        return []
    late = now - send_at
    msg = f"{show_time(send_at, zone)} is already past ({late.total_seconds() / 3600:.1f} h ago)"
    if late > window:
        msg += (f"; dispatch-due will not send it (older than stale_after_hours = "
                f"{config.dispatch.stale_after_hours:g}) unless its dispatch has started")
    else:
        msg += "; the next dispatch-due run sends it"
    return [ScheduleProblem("warning", Problem(issue.source_file, line, col,
                                               "schedule.send_at", msg))]


@dataclass(frozen=True)
class Scheduled:
    issue: Issue
    path: Path
    send_at: dt.datetime  # UTC

    @property
    def lists(self) -> list[str]:
        assert self.issue.schedule is not None
        return list(self.issue.schedule.lists)

    @property
    def sender(self) -> str | None:
        assert self.issue.schedule is not None
        return self.issue.schedule.sender


def find_scheduled(issues_dir: Path, config: Config) -> tuple[list[Scheduled], list[str]]:
    """Scheduled issues of ``issues_dir/*.y(a)ml`` by send time, and one line per problem.

    A file that does not load is a problem (it might be meant for cron); two
    scheduled files with one issue id are both held back.
    """
    from .issue import load_issue

    if not issues_dir.is_dir():
        return [], [f"{issues_dir}: issues folder not found"]
    found: list[Scheduled] = []
    problems: list[str] = []
    files = sorted(p for p in issues_dir.iterdir()
                   if p.suffix in (".yaml", ".yml") and p.is_file())
    for path in files:
        try:
            issue = load_issue(path)
            if issue.schedule is None:
                continue
            found.append(Scheduled(issue, path, resolve_send_at(issue,
                                                                config.newsletter.timezone)))
        except IssueError as exc:
            problems += [str(p) for p in exc.problems]
    by_id: dict[str, list[Scheduled]] = {}
    for s in found:
        by_id.setdefault(s.issue.id, []).append(s)
    for issue_id, same in by_id.items():
        if len(same) > 1:
            names = ", ".join(str(s.path) for s in same)
            problems.append(f"issue id '{issue_id}' is scheduled by {len(same)} files "
                            f"({names}); none of them is sent until one is left")
            found = [s for s in found if s.issue.id != issue_id]
    return sorted(found, key=lambda s: (s.send_at, s.issue.id)), problems


_HELD = re.compile(r"^\d+ consecutive failures")


def _held(dispatch: DispatchInfo) -> bool:
    """Paused because recipients kept failing: resuming from cron every few minutes could
    fail (and suppress) a batch of subscribers each time, so a person decides. A dispatch
    paused because the sender could not be reached at all is resumed by the next run."""
    return dispatch.state == "paused" and bool(_HELD.match(dispatch.note or ""))


def classify(send_at: dt.datetime, dispatch: DispatchInfo | None, now: dt.datetime,
             window: dt.timedelta) -> str:
    if dispatch is not None:
        return "done" if dispatch.state == "done" else "sending"
    if send_at > now:
        return "upcoming"
    return "stale" if now - send_at > window else "due"


@dataclass(frozen=True)
class Entry:
    """One (scheduled issue, list) and its state at a moment."""

    item: Scheduled
    list_name: str
    state: str
    dispatch: DispatchInfo | None
    first_seen_at: dt.datetime | None


def _ledger(store: Store, config: Config, clock: Clock) -> Any:
    from .store.ledger import Ledger

    return Ledger(store.engine, clock=clock,
                  message_id_domain=config.newsletter.message_id_domain)


def _first_seen(store: Store, item: Scheduled) -> dt.datetime | None:
    from sqlalchemy import select

    from .store.schedule_schema import schedule_seen as t

    with store.engine.connect() as conn:
        row = conn.execute(select(t).where(t.c.issue_id == item.issue.id)).first()
    if row is None or _aware(row.send_at) != item.send_at:
        return None
    return _aware(row.first_seen_at)


def _note_due(store: Store, item: Scheduled, now: dt.datetime) -> tuple[dt.datetime, bool]:
    """Record when cron first saw this (issue, send_at) due: (first seen, date moved?)."""
    from sqlalchemy import select

    from .store.db import write_transaction
    from .store.schedule_schema import schedule_seen as t

    now = now.astimezone(dt.UTC)
    with write_transaction(store.engine) as conn:
        row = conn.execute(select(t).where(t.c.issue_id == item.issue.id)).first()
        if row is not None and _aware(row.send_at) == item.send_at:
            return _aware(row.first_seen_at) or now, False
        if row is not None:
            conn.execute(t.update().where(t.c.issue_id == item.issue.id).values(
                send_at=item.send_at, first_seen_at=now))
        else:
            conn.execute(t.insert().values(issue_id=item.issue.id, send_at=item.send_at,
                                           first_seen_at=now))
        return now, row is not None


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def schedule_entries(items: list[Scheduled], store: Store, config: Config,
                     now: dt.datetime) -> list[Entry]:
    """Every (issue, list) of ``items`` with its state at ``now`` (reads only)."""
    ledger = _ledger(store, config, lambda: now)
    window = dt.timedelta(hours=config.dispatch.stale_after_hours)
    out = []
    for item in items:
        seen = _first_seen(store, item)
        for name in item.lists:
            found = ledger.find(item.issue.id, name)
            d = found[0] if found else None
            out.append(Entry(item, name, classify(item.send_at, d, now, window), d, seen))
    return out


def format_schedule(entries: list[Entry], timezone: str) -> str:
    """The ``pbtp-mailer schedule`` table."""
    zone = ZoneInfo(timezone)
    rows = [("ISSUE", f"SEND AT ({timezone})", "UTC", "LIST", "STATE")]
    for e in entries:
        local = e.item.send_at.astimezone(zone)
        state = e.state
        if e.dispatch is not None and e.dispatch.state == "paused":
            state += " (paused)"
        rows.append((e.item.issue.id, f"{local:%Y-%m-%d %H:%M} {local.tzname()}",
                     _utc(e.item.send_at), e.list_name, state))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def parse_now(text: str) -> dt.datetime:
    """``--now``: ISO 8601 with an offset (``Z`` allowed)."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date-time") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{text!r} has no offset (write e.g. {text}Z or {text}-06:00)")
    return value.astimezone(dt.UTC)


def offset_clock(start: dt.datetime,
                 monotonic: Callable[[], float] = time.monotonic) -> Clock:
    """A clock that reads ``start`` now and advances in real time (``--now``)."""
    origin = monotonic()
    return lambda: start + dt.timedelta(seconds=monotonic() - origin)


# -- one cron run ---------------------------------------------------------------

SenderFactory = Callable[[str | None], "Sender"]


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
                 schedule_clock: Clock | None = None) -> None:
        self.config, self.store, self.issues_dir = config, store, issues_dir
        self.clock, self.log, self.sleep = clock, log, sleep
        #: what is due and what is stale is judged on this clock (``--now``); the ledger
        #: (sent_at, heartbeats that tell live dispatchers from dead ones) keeps ``clock``
        self.schedule_clock = schedule_clock or clock
        self.sender_factory = sender_factory
        self.window = dt.timedelta(hours=config.dispatch.stale_after_hours)
        self.zone = ZoneInfo(config.newsletter.timezone)
        self._current: Dispatcher | None = None
        self._stop: str | None = None

    def stop(self, why: str = "interrupted by a signal") -> None:
        self._stop = why
        if self._current is not None:
            self._current.stop(why)

    def run(self) -> DueReport:
        out = DueReport()
        items, problems = find_scheduled(self.issues_dir, self.config)
        for p in problems:
            self._problem(out, p, "invalid")
        handled: set[tuple[str, str]] = set()
        ledger = _ledger(self.store, self.config, self.clock)
        for item in items:
            for name in item.lists:
                if self._stop:
                    break
                now = self.schedule_clock()
                found = ledger.find(item.issue.id, name)
                dispatch = found[0] if found else None
                state = classify(item.send_at, dispatch, now, self.window)
                if state in ("upcoming", "done"):
                    continue
                if state == "sending" and item.send_at > now:
                    continue  # started by hand before its time: only deferred retries (below)
                if dispatch is not None and _held(dispatch):
                    handled.add((item.issue.id, name))
                    self._problem(out, (
                        f"{item.issue.id} -> {name}: paused: {dispatch.note}; not resumed by "
                        f"cron: fix the cause, then resume with pbtp-mailer send {item.path} "
                        f"--list {name}"), "paused", item.issue.id, name)
                    continue
                first, moved = _note_due(self.store, item, now)
                if moved:
                    self.log.event("rescheduled", issue=item.issue.id,
                                   send_at=item.send_at.strftime("%Y-%m-%dT%H:%M:%SZ"))
                if state == "stale":
                    late = (now - item.send_at).total_seconds() / 3600
                    self._problem(out, (
                        f"{item.issue.place('schedule', 'send_at')}: schedule.send_at: "
                        f"not sent to '{name}': {show_time(item.send_at, self.zone)} is "
                        f"{late:.1f} h past (stale_after_hours = "
                        f"{self.config.dispatch.stale_after_hours:g}; first seen due "
                        f"{_utc(first)}); send it by hand (pbtp-mailer send {item.path} --list "
                        f"{name}) or move send_at"), "stale", item.issue.id, name)
                    continue
                handled.add((item.issue.id, name))
                fresh = now - item.send_at <= self.window
                self._dispatch(out, item.path, item.issue.id, name, item.sender,
                               enqueue_new=fresh, why="due" if dispatch is None else "resume")
        if not self._stop:
            self._retries(out, handled)
        if self._stop:
            out.stopped = self._stop
            self._problem(out, f"dispatch-due stopped: {self._stop}; the next run continues",
                          "stopped")
        return out

    def _retries(self, out: DueReport, handled: set[tuple[str, str]]) -> None:
        """Earlier dispatches with nothing pending and deferred rows now due."""
        from sqlalchemy import select

        from .store.ledger_schema import dispatches

        ledger = _ledger(self.store, self.config, self.clock)
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(dispatches).where(dispatches.c.state == "running")
                                .order_by(dispatches.c.id)).all()
        for d in rows:
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
        from .dispatch import Dispatcher, DispatchOptions, plan_dispatch

        options = DispatchOptions(list_name=list_name, sender=sender, enqueue_new=enqueue_new)
        try:
            plan = plan_dispatch(path, self.config, self.store, options)
            if plan.issue.id != issue_id:
                raise MailerError(f"{path}: now holds issue '{plan.issue.id}', not '{issue_id}'")
            if why != "resume":
                self.log.event("dispatch", issue=issue_id, list=list_name, why=why,
                               sender=plan.sender_name, recipients=plan.recipients)
            built = self.sender_factory(sender) if self.sender_factory else None
            self._current = Dispatcher(plan, options, sender=built, clock=self.clock,
                                       sleep=self.sleep)
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
        c = report.counts
        state = "done" if not report.remaining and not c.get("sending") else "incomplete"
        busy = (report.sent + report.failed + report.deferred + report.skipped + report.enqueued
                + report.header_refused)
        # a resume that only finds rows waiting for their retry time (or for a person)
        # logs nothing: it happens every few minutes
        if why != "resume" or busy or report.stopped or state == "done":
            self.log.event("sent", issue=issue_id, list=list_name, sent=report.sent,
                           failed=report.failed, deferred=report.deferred,
                           skipped=report.skipped, remaining=report.remaining,
                           ambiguous=report.ambiguous,
                           state="stopped" if report.stopped else state,
                           elapsed=f"{report.elapsed:.1f}", why=why, quota=report.quota)
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

    def _problem(self, out: DueReport, line: str, event: str, issue: str | None = None,
                 list_name: str | None = None) -> None:
        line = " ".join(line.splitlines())  # server texts may hold line breaks: one line each
        out.problems.append(line)
        self.log.event(event, issue=issue, list=list_name, msg=line)


# -- cron -------------------------------------------------------------------------

ENV_FILE = "env"
LOG_FILE = "dispatch.log"
CRON_OUT = "cron.out"


def executable() -> list[str]:
    """How cron should start this very installation (absolute, no PATH needed)."""
    import os
    import shutil
    import sys

    here = Path(os.path.abspath(sys.executable)).parent / "pbtp-mailer"
    if here.is_file() and os.access(here, os.X_OK):
        return [str(here)]
    found = shutil.which("pbtp-mailer")
    if found:
        return [os.path.abspath(found)]
    return [os.path.abspath(sys.executable), "-m", "pbtp_mailer"]


def cron_command(config: Config, command: list[str] | None = None) -> str:
    """The shell command of the crontab entry: cd, read the env file, run, log."""
    import shlex

    data = config.data_dir
    argv = [*(command or executable())]
    if config.path is not None:
        argv += ["--config", str(Path(config.path).resolve())]
    argv += ["dispatch-due", "--log-file", str(data / LOG_FILE)]
    q = shlex.quote
    # set -a: the env file holds plain NAME=value lines, the format systemd's
    # EnvironmentFile= reads too, so one file serves cron and a timer unit
    return (f"cd {q(str(config.base_dir))} && set -a && . {q(str(data / ENV_FILE))} && set +a && "
            f"{' '.join(q(a) for a in argv)} >>{q(str(data / CRON_OUT))} 2>&1")


def cron_entry(config: Config, every_minutes: int = 5, command: list[str] | None = None) -> str:
    """``*/5 * * * * <cron_command>`` (``%`` escaped: cron reads it as a newline)."""
    return f"*/{every_minutes} * * * * " + cron_command(config, command).replace("%", r"\%")


def env_file_problems(config: Config) -> list[str]:
    """What is wrong with the environment file the crontab entry reads."""
    import stat

    path = config.data_dir / ENV_FILE
    if not path.is_file():
        return [f"{path} does not exist: create it with the secrets cron needs, one "
                f"NAME=value a line (PBTP_MAILER_SECRET=..., each sender's password_env), "
                f"then chmod 600 {path}"]
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return [f"{path} is readable by others (mode {mode:o}): chmod 600 {path}"]
    return []


LOCK_FILE = "dispatch-due.lock"


def run_due(config: Config, *, issues_dir: Path | None = None, clock: Clock | None = None,
            schedule_clock: Clock | None = None, log: RunLog | None = None,
            sleep: Callable[[float], None] = time.sleep,
            sender_factory: SenderFactory | None = None,
            on_start: Callable[[DueRunner], None] | None = None) -> DueReport:
    """One cron run: take the lock (``LockBusyError`` if held), open the store, run.

    ``clock`` is the time of the ledger and the log (default: the wall
    clock); ``schedule_clock`` the time at which due and stale are judged
    (default: ``clock``; ``--now`` sets only this one, so a catch-up run
    never writes invented times into the ledger or looks like a dead
    dispatcher to a live one). ``on_start`` gets the runner before it
    starts (the CLI hooks signals to its ``stop``).
    """
    from .lock import RunLock
    from .runlog import RunLog
    from .store import Store

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
                               schedule_clock=schedule_clock)
            if on_start is not None:
                on_start(runner)
            return runner.run()
    finally:
        lock.release()
