"""Worker registry: heartbeats buy leases; a dead worker's claimed rows go to the others."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import socket

from sqlalchemy import func, insert, select

from pbtp_mailer.store import Store
from pbtp_mailer.store.ledger_schema import deliveries, dispatches
from pbtp_mailer.store.workers import WorkerRegistry


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def seed(store: Store, states: dict[str, tuple[str, int]]) -> int:
    """A dispatch with rows in the given states: ``{owner: (state, count)}``."""
    now = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    with store.engine.begin() as conn:
        did = conn.execute(insert(dispatches).values(
            issue_id="2024-03", list_id=1, list_name="news", issue_file="x.yaml",
            sender="smtp", content_hash="0" * 64, subject="s", preheader="", language="en",
            frozen_text="", frozen_html="", state="running", note="", created_at=now,
            updated_at=now)).inserted_primary_key[0]
        rows, i = [], 0
        for owner, (state, count) in states.items():
            for _ in range(count):
                i += 1
                rows.append({"dispatch_id": did, "issue_id": "2024-03", "subscriber_id": i,
                             "list_id": 1, "email": f"r{i}@example.org",
                             "email_key": f"r{i}@example.org", "state": state, "attempts": 1,
                             "claimed_by": owner, "created_at": now, "updated_at": now})
        conn.execute(insert(deliveries), rows)
    return int(did)


def states(store: Store) -> dict[tuple[str, str | None], int]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(deliveries.c.state, deliveries.c.claimed_by, func.count())
                            .group_by(deliveries.c.state, deliveries.c.claimed_by)).all()
    return {(s, o): n for s, o, n in rows}


def test_register_beat_show_and_leave(db_url: str) -> None:
    clock = Clock()
    with Store.from_url(db_url) as store:
        me = WorkerRegistry(store.engine, clock=clock, lease_seconds=30)
        me.register(issue_id="2024-03", list_name="news", sender="smtp")
        clock.now += dt.timedelta(seconds=10)
        assert me.due()
        assert me.beat(sent=500)
        [w] = me.workers()
        assert (w.host, w.pid, w.sent, w.rate, w.alive) == (socket.gethostname(), os.getpid(),
                                                            500, 50.0, True)
        assert w.issue_id == "2024-03" and w.list_name == "news"
        assert me.lease_left() == 30
        me.unregister()
        assert me.workers() == []


def test_a_dead_workers_claims_go_to_the_others(db_url: str) -> None:
    clock = Clock()
    with Store.from_url(db_url) as store:
        far = WorkerRegistry(store.engine, "elsewhere:4242:aa", clock=clock, lease_seconds=30)
        far.register()
        me = WorkerRegistry(store.engine, clock=clock, lease_seconds=30)
        me.register()
        seed(store, {far.owner: ("claimed", 100), me.owner: ("claimed", 7)})
        seed_sending(store, far.owner, 3)
        assert me.take_over().dead == ()  # within its lease: alive, even without beats
        clock.now += dt.timedelta(seconds=31)
        assert me.beat(sent=0)  # I beat; the far worker did not
        taken = me.take_over()
        assert taken.dead == (far.owner,)
        assert (taken.released, taken.ambiguous) == (100, 3)
        got = states(store)
        assert got[("pending", None)] == 100  # never on the wire: safe to send
        assert got[("claimed", me.owner)] == 7  # a live worker's rows are untouched
        assert got[("sending", far.owner)] == 3  # ambiguous, never resent blindly
        assert not far.beat(sent=5)  # it comes back: told it lost its lease
        dead = [w for w in me.workers() if not w.alive]
        assert [w.owner for w in dead] == [far.owner] and dead[0].dead_at == clock.now
        assert me.take_over() == type(taken)()  # declared once


def seed_sending(store: Store, owner: str, count: int) -> None:
    with store.engine.begin() as conn:
        did = conn.execute(select(func.max(dispatches.c.id))).scalar_one()
        start = conn.execute(select(func.count()).select_from(deliveries)).scalar_one()
        now = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
        conn.execute(insert(deliveries), [
            {"dispatch_id": did, "issue_id": "2024-03", "subscriber_id": 1000 + i, "list_id": 1,
             "email": f"s{start + i}@example.org", "email_key": f"s{start + i}@example.org",
             "state": "sending", "attempts": 1, "claimed_by": owner, "created_at": now,
             "updated_at": now} for i in range(count)])


def _claim_and_hang(url: str, ready: multiprocessing.Event) -> None:
    with Store.from_url(url) as store:
        me = WorkerRegistry(store.engine)
        me.register(issue_id="2024-03")
        seed(store, {me.owner: ("claimed", 20)})
        ready.set()
        signal.pause()  # killed here with SIGKILL


def test_a_killed_process_on_this_host_is_taken_over_at_once(db_url: str) -> None:
    Store.from_url(db_url).close()
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_claim_and_hang, args=(db_url, ready))
    proc.start()
    try:
        assert ready.wait(60)
        with Store.from_url(db_url) as store:
            me = WorkerRegistry(store.engine)
            me.register()
            assert me.take_over().dead == ()  # alive: its pid runs and its lease holds
            os.kill(proc.pid, signal.SIGKILL)
            proc.join(30)
            taken = me.take_over()  # its lease has a minute to run; its pid is gone
            assert len(taken.dead) == 1 and taken.released == 20
            assert states(store) == {("pending", None): 20}
    finally:
        if proc.is_alive():
            proc.kill()


def test_a_worker_that_lost_its_claims_cannot_mark_them_sending(db_url: str) -> None:
    from pbtp_mailer.store.ledger_types import Claimed

    clock = Clock()
    with Store.from_url(db_url) as store:
        late = WorkerRegistry(store.engine, "elsewhere:77:bb", clock=clock, lease_seconds=30)
        late.register()
        me = WorkerRegistry(store.engine, clock=clock, lease_seconds=30)
        me.register()
        seed(store, {late.owner: ("claimed", 5), me.owner: ("claimed", 3)})
        with store.engine.connect() as conn:
            rows = conn.execute(select(deliveries.c.id, deliveries.c.claimed_by)
                                .order_by(deliveries.c.id)).all()

        def claimed(owner: str) -> list[Claimed]:
            return [Claimed(r.id, r.id, 1, f"r{r.id}@example.org", None, {}, f"<{r.id}@x>", 2,
                            clock.now) for r in rows if r.claimed_by == owner]

        clock.now += dt.timedelta(seconds=31)
        assert me.beat(sent=0) and me.take_over().released == 5
        ledger = store.ledger(clock)
        # the late worker wakes up and tries to send what it had claimed: nothing is its own
        assert ledger.begin_send(late.owner, claimed(late.owner), [], list_id=1) == []
        mine = ledger.begin_send(me.owner, claimed(me.owner), [], list_id=1)
        assert len(mine) == 3
        assert states(store) == {("pending", None): 5, ("sending", me.owner): 3}
