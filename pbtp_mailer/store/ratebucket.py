"""A sender's rate and quotas shared by every worker: token batches leased from one row.

Each ``send`` process used to keep its own per-second bucket, so four
workers on ``rate = "40/s"`` sent 160/s. Here the bucket is a row of
``rate_buckets`` (one per sender) and a worker *leases* whole tokens from it
in one short transaction, a batch at a time, then spends them locally with
no database round trip per message:

* the bucket refills at ``per_second`` tokens per second of wall-clock time
  and holds at most two leases worth (a lease is ``per_second *
  lease_seconds``, at least 1), so the whole fleet's burst is two leases and
  its rate over any ten seconds is ``per_second`` within two leases (4% at
  the defaults);
* a worker that finds the bucket empty sleeps until a lease worth should be
  there, plus a random share of a lease period, so the database sees at most
  about ``1 / lease_seconds`` lease attempts per second per worker, however
  many messages go out;
* minute/hour/day quotas (``rate_usage``) are counted in the same
  transaction as the lease, capped by the room left, so a daily quota holds
  across workers and across runs; tokens not spent (the worker stops, or
  holds them longer than ``hold_seconds``) are given back to the quota
  count and, on ``close``, to the bucket.

Wall-clock seconds are shared between machines (NTP); a clock running behind
the bucket's stamp refills nothing until it catches up, never more. SQLite
serialises leases with ``BEGIN IMMEDIATE``, PostgreSQL with ``FOR UPDATE``
on the bucket row; no lock is held across network I/O.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, select

from pbtp_mailer.store.db import insert_ignore, write_transaction
from pbtp_mailer.store.ledger_schema import rate_usage
from pbtp_mailer.store.workers_schema import rate_buckets

__all__ = ["SharedRateLimit", "Lease"]


@dataclass(frozen=True)
class Lease:
    """What one lease transaction gave: ``granted`` tokens; if 0, either a quota window
    is ``full`` (its name) or the bucket needs ``wait`` more seconds."""

    granted: int
    full: str | None = None
    wait: float = 0.0
    when: dt.datetime = dt.datetime.min.replace(tzinfo=dt.UTC)  # the window clock


class SharedRateLimit:
    """``take(n)`` -> how many messages may go now (waits for the rate; 0 = quota full)."""

    def __init__(self, engine: Engine, sender: str, *, per_second: float | None,
                 windows: dict[str, int] | None = None, lease_seconds: float = 0.2,
                 hold_seconds: float = 1.0, quota_lease: int = 256,
                 clock: Callable[[], float] = time.time,
                 now: Callable[[], dt.datetime] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None) -> None:
        self.engine = engine
        self.sender = sender
        self.per_second = per_second
        self.windows = dict(windows or {})
        self.lease_seconds = lease_seconds
        self.lease_size = max(1, int(per_second * lease_seconds)) if per_second else quota_lease
        self.hold_seconds = hold_seconds
        #: local pacing: at most ``per_second * pace_seconds`` (at least 1) tokens at once
        self.pace_seconds = 0.01
        self._pace, self._pace_at = 1.0, clock()
        self.clock = clock  # wall seconds: the bucket
        #: the quota windows' clock (the dispatcher's, which tests may freeze)
        self.now = now or (lambda: dt.datetime.fromtimestamp(self.clock(), dt.UTC))
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.full: str | None = None
        self.leases = 0  # lease transactions so far (the benchmark and tests read it)
        self._local = 0  # leased, not yet spent
        self._leased_at = 0.0
        #: (window clock when leased, count): leased, not spent, to give back
        self._unspent: list[tuple[dt.datetime, int]] = []
        self._leased_when = dt.datetime.min.replace(tzinfo=dt.UTC)

    @property
    def active(self) -> bool:
        return bool(self.per_second or self.windows)

    def take(self, want: int) -> int:
        """Wait until at least one message may go; return how many (1..want), or 0 when
        a quota window is full (``self.full`` names it; the run should stop)."""
        for _ in range(100_000):  # bounded; each pass leases or sleeps about a lease period
            got = self.poll(want)
            if isinstance(got, int):
                return got
            self.sleep(got)
        raise RuntimeError("shared rate limit: no token in 100,000 attempts")  # pragma: no cover

    def poll(self, want: int) -> int | float:
        """Without waiting: how many messages may go now (1..want), 0 when a quota window
        is full, or the seconds to wait before asking again (a float)."""
        if not self.active:
            return want
        want = max(1, want)
        now = self.clock()
        if self.per_second:  # pace locally too: leased tokens go out evenly, not in a burst
            pace_burst = max(1.0, self.per_second * self.pace_seconds)
            self._pace = min(pace_burst, self._pace + max(0.0, now - self._pace_at)
                             * self.per_second)
            self._pace_at = now
            if self._pace < 1:
                return (1 - self._pace) / self.per_second
            want = min(want, int(self._pace))
        if self._local and now - self._leased_at > self.hold_seconds:
            self._unspent.append((self._leased_when, self._local))  # stale: no late burst
            self._local = 0
        if not self._local:
            lease = self._lease(max(want, self.lease_size), now)
            if lease.full:
                self.full = lease.full
                return 0
            if not lease.granted:
                return lease.wait + self.rng.uniform(0, self.lease_seconds / 4)
            self._local, self._leased_at, self._leased_when = lease.granted, now, lease.when
        n = min(want, self._local)
        self._local -= n
        self._pace -= n
        return n

    def unspend(self, n: int) -> None:
        """Tokens taken but not used after all (rows skipped): spend them later."""
        if n > 0 and self.active:
            self._local += n
            self._pace += n

    def close(self) -> None:
        """Give tokens leased but not spent back to the bucket and the quota counts."""
        if self._local:
            self._unspent.append((self._leased_when, self._local))
        back = sum(n for _, n in self._unspent)
        self._local = 0
        if not back:
            return
        now = self.clock()
        with write_transaction(self.engine) as conn:
            tokens, stamp = self._bucket(conn, now)
            self._give_back(conn, self.now())
            if self.per_second:
                conn.execute(rate_buckets.update().where(rate_buckets.c.sender == self.sender)
                             .values(tokens=min(self._burst, tokens + back), stamp=stamp))

    def __enter__(self) -> SharedRateLimit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the lease transaction ----------------------------------------------

    @property
    def _burst(self) -> float:
        """Two leases: a sleeper's jitter loses no tokens; the fleet's burst stays small."""
        return 2.0 * self.lease_size

    def _lease(self, want: int, now: float) -> Lease:
        self.leases += 1
        when = self.now()
        with write_transaction(self.engine) as conn:
            tokens, stamp = self._bucket(conn, now)  # also the lock quota counts rely on
            self._give_back(conn, when)
            grant = want
            if self.per_second:
                # a whole lease or nothing (few leases, however fast we pace), and all that
                # is there up to the bucket's size: what waited for us is not lost
                grant = min(int(self._burst), int(tokens)) \
                    if tokens >= min(want, self.lease_size) else 0
            full = None
            if self.windows and grant:
                room, full = self._room(conn, when)
                grant = min(grant, room)
            if grant <= 0:
                if full:
                    return Lease(0, full=full)
                need = min(want, self.lease_size) - tokens
                return Lease(0, wait=max(0.0, need) / float(self.per_second or 1))
            if self.per_second:
                conn.execute(rate_buckets.update().where(rate_buckets.c.sender == self.sender)
                             .values(tokens=tokens - grant, stamp=stamp))
            if self.windows:
                self._count(conn, when, grant)
        return Lease(grant, when=when)

    def _bucket(self, conn: Connection, now: float) -> tuple[float, float]:
        """Lock this sender's bucket row (creating it nearly empty) and refill it to ``now``."""
        conn.execute(insert_ignore(conn, rate_buckets, "sender").values(
            sender=self.sender, tokens=1.0, stamp=now))
        q = select(rate_buckets.c.tokens, rate_buckets.c.stamp).where(
            rate_buckets.c.sender == self.sender)
        if conn.dialect.name == "postgresql":
            q = q.with_for_update()
        tokens, stamp = conn.execute(q).one()
        if now > stamp and self.per_second:  # a clock behind the stamp refills nothing
            tokens = min(self._burst, tokens + (now - stamp) * self.per_second)
            stamp = now
        return float(tokens), float(stamp)

    def _usage(self, conn: Connection, at: dt.datetime) -> dict[str, tuple[dt.datetime, int, bool]]:
        from pbtp_mailer.dispatch.ratelimit import window_start

        out = {}
        for window in self.windows:
            start = window_start(at, window)
            row = conn.execute(select(rate_usage.c.window_start, rate_usage.c.count).where(
                rate_usage.c.sender == self.sender, rate_usage.c.window == window)).first()
            if row is None:
                out[window] = (start, 0, False)
            else:
                began, count = row  # (Row.count is tuple.count)
                out[window] = (start, int(count) if _aware(began) == start else 0, True)
        return out

    def _room(self, conn: Connection, at: dt.datetime) -> tuple[int, str | None]:
        room, full = math.inf, None
        for window, (_, used, _) in self._usage(conn, at).items():
            left = self.windows[window] - used
            if left <= 0 and full is None:
                full = window
            room = min(room, left)
        return int(max(0, room)), full

    def _count(self, conn: Connection, at: dt.datetime, n: int) -> None:
        for window, (start, used, exists) in self._usage(conn, at).items():
            values = {"window_start": start, "count": max(0, used + n)}
            if exists:
                conn.execute(rate_usage.update().where(
                    rate_usage.c.sender == self.sender, rate_usage.c.window == window)
                    .values(**values))
            else:
                conn.execute(rate_usage.insert().values(sender=self.sender, window=window,
                                                        **values))

    def _give_back(self, conn: Connection, at: dt.datetime) -> None:
        """Uncount unspent tokens from the quota windows they were counted in."""
        if not self._unspent or not self.windows:
            self._unspent.clear()
            return
        from pbtp_mailer.dispatch.ratelimit import window_start

        for then, n in self._unspent:
            for window in self.windows:
                if window_start(then, window) != window_start(at, window):
                    continue  # counted in a window that has closed: nothing to give back
                conn.execute(rate_usage.update().where(
                    rate_usage.c.sender == self.sender, rate_usage.c.window == window,
                    rate_usage.c.count >= n).values(count=rate_usage.c.count - n))
        self._unspent.clear()


def _aware(value: dt.datetime) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
