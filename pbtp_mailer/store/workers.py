"""The worker fleet: ``send`` processes on one database, their heartbeats and leases.

Every ``send`` process registers a row in ``workers`` and beats its heart
every ``beat_seconds``; each beat buys a lease of ``lease_seconds``. Rows a
worker ``claimed`` carry its name (``deliveries.claimed_by``), so the lease
covers them:

* a worker whose lease has run out (or, on this host, whose pid is gone) is
  *dead*. ``take_over`` - any live worker calls it at each beat - marks it
  dead and puts its ``claimed`` rows back to ``pending`` for the others: they
  never went on the wire, so that is safe. Its ``sending`` rows are not
  touched: delivered or not is unknown, so they are reported as ambiguous
  and resent only by ``send --resend-unknown``;
* a worker must not begin sending once its own lease has run out: ``beat``
  returns False when the row is gone or was marked dead, and the worker
  stops (others may already have its claimed rows);
* a clean exit deletes the row; a dead one's row stays for ``status`` until
  it is a week old.

Heartbeats also carry the worker's ``sent`` count and recent rate, so
``status`` shows live workers (host, pid, since, sent, rate) and dead ones.
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from pbtp_mailer.store.db import write_transaction
from pbtp_mailer.store.ledger_schema import deliveries
from pbtp_mailer.store.runners import new_owner, pid_alive
from pbtp_mailer.store.workers_schema import workers

__all__ = ["WorkerRegistry", "WorkerInfo", "TakeOver", "all_workers", "LEASE_SECONDS",
           "BEAT_SECONDS"]

LEASE_SECONDS = 60.0
BEAT_SECONDS = 10.0
KEEP_DEAD = dt.timedelta(days=7)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class WorkerInfo:
    owner: str
    host: str
    pid: int
    issue_id: str | None
    list_name: str | None
    sender: str | None
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    lease_until: dt.datetime
    sent: int
    rate: float | None
    alive: bool
    dead_at: dt.datetime | None
    note: str | None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            out[key] = value.isoformat(timespec="seconds") if isinstance(value, dt.datetime) \
                else value
        return out


@dataclass(frozen=True)
class TakeOver:
    """What one ``take_over`` found: newly dead workers, their claimed rows put back
    to pending, and their sending rows (ambiguous, left alone)."""

    dead: tuple[str, ...] = ()
    released: int = 0
    ambiguous: int = 0


class WorkerRegistry:
    """One worker's view of the fleet (``owner`` is this process)."""

    def __init__(self, engine: Engine, owner: str | None = None, *,
                 clock: Callable[[], dt.datetime] = _utcnow,
                 lease_seconds: float = LEASE_SECONDS,
                 beat_seconds: float = BEAT_SECONDS) -> None:
        self.engine = engine
        self.owner = owner or new_owner()
        self.clock = clock
        self.lease = dt.timedelta(seconds=lease_seconds)
        self.beat_every = dt.timedelta(seconds=min(beat_seconds, lease_seconds / 3))
        self._last_beat: dt.datetime | None = None
        self._last_sent = 0
        self._lease_until: dt.datetime | None = None

    # -- this worker ---------------------------------------------------------

    def register(self, *, issue_id: str | None = None, list_name: str | None = None,
                 sender: str | None = None) -> None:
        host, pid, _ = self.owner.rsplit(":", 2)
        now = self.clock()
        with write_transaction(self.engine) as conn:
            conn.execute(workers.delete().where(workers.c.owner == self.owner))
            conn.execute(workers.delete().where(workers.c.dead_at.is_not(None),
                                                workers.c.dead_at < now - KEEP_DEAD))
            conn.execute(workers.insert().values(
                owner=self.owner, host=host, pid=int(pid), issue_id=issue_id,
                list_name=list_name, sender=sender, started_at=now, heartbeat_at=now,
                lease_until=now + self.lease, sent=0, rate=None))
        self._last_beat, self._last_sent, self._lease_until = now, 0, now + self.lease

    def due(self, now: dt.datetime | None = None) -> bool:
        """Whether a heartbeat is due (cheap: no database)."""
        now = now or self.clock()
        return self._last_beat is None or now - self._last_beat >= self.beat_every

    def lease_left(self, now: dt.datetime | None = None) -> float:
        """Seconds until this worker's lease runs out (negative: it has)."""
        if self._lease_until is None:
            return -1.0
        return (self._lease_until - (now or self.clock())).total_seconds()

    def beat(self, sent: int, conn: Connection | None = None) -> bool:
        """Renew the lease and publish ``sent`` (this run's total) and the recent rate.

        Inside ``conn`` when given (a transaction the caller is in anyway).
        False when this worker was declared dead or its row is gone: stop
        sending, its claimed rows may be someone else's now."""
        now = self.clock()
        rate = None
        if self._last_beat is not None and now > self._last_beat:
            rate = round((sent - self._last_sent) / (now - self._last_beat).total_seconds(), 1)
        stmt = workers.update().where(workers.c.owner == self.owner,
                                      workers.c.dead_at.is_(None)).values(
            heartbeat_at=now, lease_until=now + self.lease, sent=sent, rate=rate)
        if conn is None:
            with write_transaction(self.engine) as own:
                alive = own.execute(stmt).rowcount == 1
        else:
            alive = conn.execute(stmt).rowcount == 1
        if alive:
            self._last_beat, self._last_sent, self._lease_until = now, sent, now + self.lease
        return alive

    def unregister(self) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(workers.delete().where(workers.c.owner == self.owner,
                                                workers.c.dead_at.is_(None)))
        self._lease_until = None

    # -- the fleet -------------------------------------------------------------

    def workers(self) -> list[WorkerInfo]:
        """Every registered worker, live ones first, each with ``alive`` judged now."""
        return all_workers(self.engine, self.clock())

    def live_owners(self) -> set[str]:
        return {w.owner for w in self.workers() if w.alive}

    def take_over(self, dispatch_id: int | None = None) -> TakeOver:
        """Declare workers whose lease ran out dead; their claimed rows go back to pending.

        Their ``sending`` rows stay as they are (ambiguous). ``dispatch_id``
        limits the release to one dispatch; the dead are declared either way."""
        now = self.clock()
        with write_transaction(self.engine) as conn:
            rows = conn.execute(select(workers).where(workers.c.dead_at.is_(None))).all()
            dead = [r.owner for r in rows if not _alive(r, now)]
            if not dead:
                return TakeOver()
            conn.execute(workers.update().where(workers.c.owner.in_(dead),
                                                workers.c.dead_at.is_(None)).values(
                dead_at=now, note="stopped heart-beating; its claimed rows were released"))
            released = self._release(conn, dead, dispatch_id, now)
            ambiguous = conn.execute(select(func.count()).where(
                deliveries.c.state == "sending", deliveries.c.claimed_by.in_(dead))).scalar_one()
        return TakeOver(tuple(dead), released, int(ambiguous))

    def _release(self, conn: Connection, dead: Sequence[str], dispatch_id: int | None,
                 now: dt.datetime) -> int:
        where = [deliveries.c.state == "claimed", deliveries.c.claimed_by.in_(dead)]
        if dispatch_id is not None:
            where.append(deliveries.c.dispatch_id == dispatch_id)
        count = conn.execute(select(func.count()).where(*where)).scalar_one()
        if count:
            conn.execute(deliveries.update().where(*where).values(
                state="pending", claimed_by=None, updated_at=now,
                last_text="released: the worker that claimed it stopped heart-beating"))
        return int(count)



def all_workers(engine: Engine, now: dt.datetime) -> list[WorkerInfo]:
    """Every registered worker, live ones first, each with ``alive`` judged at ``now``."""
    with engine.connect() as conn:
        rows = conn.execute(select(workers).order_by(workers.c.started_at)).all()
    out = [_info(r, _alive(r, now)) for r in rows]
    return sorted(out, key=lambda w: not w.alive)


def _alive(row: Any, now: dt.datetime) -> bool:
    if row.dead_at is not None:
        return False
    if _aware(row.lease_until) < now:
        return False
    return not (row.host == socket.gethostname() and not pid_alive(row.pid))


def _aware(value: Any) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _info(r: Any, alive: bool) -> WorkerInfo:
    return WorkerInfo(
        owner=r.owner, host=r.host, pid=r.pid, issue_id=r.issue_id, list_name=r.list_name,
        sender=r.sender, started_at=_aware(r.started_at), heartbeat_at=_aware(r.heartbeat_at),
        lease_until=_aware(r.lease_until), sent=r.sent, rate=r.rate, alive=alive,
        dead_at=_aware(r.dead_at) if r.dead_at is not None else None, note=r.note)
