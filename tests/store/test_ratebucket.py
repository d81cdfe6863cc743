"""The shared rate limit: one bucket row leased in batches by every worker.

The per-second cases run on a simulated clock (no sleeping); the
several-process cases use the real clock and check the invariants that hold
whatever the machine's load: never more than the rate allows, quotas exact.
"""

from __future__ import annotations

import multiprocessing
import random
import time

from sqlalchemy import select

from pbtp_mailer.store import Store
from pbtp_mailer.store.ledger_schema import rate_usage
from pbtp_mailer.store.ratebucket import SharedRateLimit


class SimClock:
    """Wall-clock seconds that move only when someone sleeps (or ``tick``s)."""

    def __init__(self) -> None:
        self.now = 1_780_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


def limiter(store: Store, clock: SimClock, **kw) -> SharedRateLimit:
    return SharedRateLimit(store.engine, kw.pop("sender", "ses"), clock=clock, sleep=clock.sleep,
                           rng=random.Random(7), **kw)


def day_count(store: Store, sender: str = "ses") -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(rate_usage.c.count).where(
            rate_usage.c.sender == sender, rate_usage.c.window == "day")).scalar_one()


def test_one_worker_keeps_the_rate_with_few_round_trips(store: Store) -> None:
    clock = SimClock()
    start = clock.now
    lim = limiter(store, clock, per_second=40)
    sent = 0
    while clock.now - start < 10:
        sent += lim.take(16)
        clock.now += 0.001  # the send itself
    assert 360 <= sent <= 440
    assert lim.leases < sent / 4  # tokens come in batches, not a round trip per message


def test_four_workers_share_one_rate(store: Store) -> None:
    clock = SimClock()
    start = clock.now
    fleet = [limiter(store, clock, per_second=40) for _ in range(4)]
    sent = [0, 0, 0, 0]
    while clock.now - start < 10:
        i = random.Random(int(clock.now * 1000)).randrange(4)
        sent[i] += fleet[i].take(16)
        clock.now += 0.002
    assert 360 <= sum(sent) <= 440, sent  # not 4 x 40/s
    assert sum(lim.leases for lim in fleet) < sum(sent)


def test_daily_quota_shared_across_workers_and_runs(store: Store) -> None:
    clock = SimClock()
    a = limiter(store, clock, per_second=None, windows={"day": 50})
    b = limiter(store, clock, per_second=None, windows={"day": 50})
    spent = a.take(16) + a.take(16)
    assert spent == 32
    assert b.take(16) == 0 and b.full == "day"  # a holds the rest of the day's lease
    a.close()  # a stops: its unspent tokens go back to the quota
    b.full = None
    spent += b.take(16) + b.take(16)
    assert spent == 50
    assert b.take(1) == 0 and b.full == "day"
    b.close()
    assert day_count(store) == 50
    c = limiter(store, clock, per_second=None, windows={"day": 50})  # the next cron run
    assert c.take(10) == 0 and c.full == "day"
    clock.now += 86_400  # tomorrow
    c.full = None
    assert c.take(10) == 10


def test_stale_tokens_are_not_spent_late(store: Store) -> None:
    clock = SimClock()
    lim = limiter(store, clock, per_second=100, windows={"day": 1000}, lease_seconds=0.2)
    assert lim.take(1) == 1  # leased a batch, spent 1
    clock.now += 5  # held too long: they go back to the quota, not out in a late burst
    later = lim.take(1000)
    assert later <= 40  # the bucket's burst (two leases of 20), not 40 + what was held
    lim.close()
    assert day_count(store) == 1 + later  # what was held and not spent was given back


def test_a_quota_full_stops_with_the_window_named(store: Store) -> None:
    clock = SimClock()
    lim = limiter(store, clock, per_second=1000, windows={"minute": 5, "hour": 100})
    total = sum(lim.take(3) for _ in range(5))
    assert total == 5 and lim.full == "minute"


# -- several processes -----------------------------------------------------------


def _worker(url: str, per_second: float | None, windows: dict[str, int], seconds: float,
            out: multiprocessing.Queue) -> None:
    with Store.from_url(url) as store:
        lim = SharedRateLimit(store.engine, "ses", per_second=per_second, windows=windows)
        got, deadline = 0, time.time() + seconds
        while time.time() < deadline:
            n = lim.take(7)
            if n == 0:
                break
            got += n
        lim.close()
        out.put((got, lim.leases))


def _run_fleet(db_url: str, per_second: float | None, windows: dict[str, int],
               seconds: float) -> tuple[list[tuple[int, int]], float]:
    Store.from_url(db_url).close()  # migrated once, before the workers start
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(db_url, per_second, windows, seconds, out))
             for _ in range(4)]
    t0 = time.time()
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    elapsed = time.time() - t0
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    return results, elapsed


def test_four_processes_never_exceed_the_shared_rate(db_url: str) -> None:
    results, elapsed = _run_fleet(db_url, 50, {}, 3.0)
    total = sum(got for got, _ in results)
    burst = 20  # two leases of 50/s x 0.2 s
    assert total <= 50 * elapsed + burst, results  # four per-process buckets would allow 4x
    assert total >= 50, results  # it does hand tokens out
    assert sum(leases for _, leases in results) < total


def test_four_processes_share_a_daily_quota_exactly(db_url: str) -> None:
    results, _ = _run_fleet(db_url, None, {"day": 300}, 60.0)
    assert sum(got for got, _ in results) == 300, results
    with Store.from_url(db_url) as store:
        assert day_count(store) == 300
