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

One cron run (``run.run_due``) sends what this module finds due. Dispatch
state is read and written only through the store's ``Ledger``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pbtp_mailer.errors import IssueError, Problem
from pbtp_mailer.store.ledger_types import PauseReason

if TYPE_CHECKING:
    from pbtp_mailer.config import Config
    from pbtp_mailer.issue.model import Issue
    from pbtp_mailer.senders.base import Sender
    from pbtp_mailer.store import Store
    from pbtp_mailer.store.ledger import DispatchInfo, Ledger

__all__ = ["Scheduled", "Entry", "ScheduleProblem", "resolve_send_at",
           "schedule_problems", "find_scheduled", "classify", "schedule_entries",
           "offset_clock", "parse_now", "STATES"]

STATES = ("upcoming", "due", "sending", "done", "stale")
Clock = Callable[[], dt.datetime]


def utc(t: dt.datetime) -> str:
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

    A file that does not load is a problem (it might be meant for cron),
    reported in one line (its first problem; ``check`` lists them all) and
    the other files go on; two scheduled files with one issue id are both
    held back.
    """
    from pbtp_mailer.issue.model import load_issue

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
        except IssueError as exc:  # one line per file: cron mails these lines
            first = str(exc.problems[0]) if exc.problems else f"{path}: invalid"
            more = len(exc.problems) - 1
            problems.append(first + (f" (and {more} more: pbtp-mailer check {path})"
                                     if more > 0 else ""))
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


#: pauses a person must look at before cron tries again
HELD_REASONS = frozenset({PauseReason.CONSECUTIVE_FAILURES, PauseReason.MESSAGE_REJECTED})


def held(dispatch: DispatchInfo) -> bool:
    """Paused because recipients kept failing, or because the server rejected the message
    itself: resuming from cron every few minutes could fail (and suppress) a batch of
    subscribers each time, or send a rejected message again, so a person decides. A
    dispatch paused because the sender could not be reached at all is resumed by the next
    run."""
    return dispatch.state == "paused" and dispatch.pause_reason in HELD_REASONS


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


def note_due(ledger: Ledger, item: Scheduled, now: dt.datetime) -> tuple[dt.datetime, bool]:
    """Record when cron first saw this (issue, send_at) due: (first seen, date moved?)."""
    return ledger.note_due(item.issue.id, item.send_at, now)


def schedule_entries(items: list[Scheduled], store: Store, config: Config,
                     now: dt.datetime) -> list[Entry]:
    """Every (issue, list) of ``items`` with its state at ``now`` (reads only)."""
    ledger = store.ledger(lambda: now)
    window = dt.timedelta(hours=config.dispatch.stale_after_hours)
    out = []
    for item in items:
        seen = ledger.first_seen_due(item.issue.id, item.send_at)
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
                     utc(e.item.send_at), e.list_name, state))
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
