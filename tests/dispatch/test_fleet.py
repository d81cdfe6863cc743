"""Several ``send`` workers on one database (PostgreSQL in the PostgreSQL pass) into an
aiosmtpd server on 127.0.0.1: one killed mid-run, a shared rate, a shared daily quota."""

from __future__ import annotations

import signal
import socket
import subprocess
import time

import pytest
from sqlalchemy import func, select

from pbtp_mailer.store.ledger_schema import deliveries
from pbtp_mailer.store.workers_schema import workers
from tests.dispatch.test_wire import send_cmd
from tests.support.smtpd import FakeSMTPServer
from tests.support.wire import delivered, env_for, ledger_rows

pytestmark = pytest.mark.slow


def add_sender(world, name: str, port: int, extra: str) -> None:
    cfg = world.root / "pbtp-mailer.toml"
    cfg.write_text(cfg.read_text(encoding="utf-8") + f'\n[senders.{name}]\nkind = "smtp"\n'
                   f'host = "127.0.0.1"\nport = {port}\ntls = "none"\n{extra}\n',
                   encoding="utf-8")


def start(world, cmd: list[str], n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen(cmd, env=env_for(world), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(n)]


def wait_until(check, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def sent_by(outs: list[tuple[str, str]]) -> list[int]:
    return [int(o.split("This run: sent ")[1].split(",")[0]) if "This run: sent " in o else 0
            for o, _ in outs]


def test_four_workers_one_killed_its_claims_taken_over(world):
    emails = world.make_list(1600)
    store = world.store()
    with FakeSMTPServer() as server:
        server.data_delay = 0.01
        url = f"smtp://127.0.0.1:{server.port}?tls=none"
        cmd = send_cmd(world, url, "--concurrency", "2")
        procs = start(world, cmd, 4)
        victim = procs[1]
        assert wait_until(lambda: len(server.messages) >= 150, 120), "no progress"
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=30)
        outs = [p.communicate(timeout=300) for p in procs if p is not victim]
        with store.engine.connect() as conn:
            dead = conn.execute(select(workers.c.owner, workers.c.dead_at).where(
                workers.c.pid == victim.pid)).one()
            left = dict(conn.execute(select(deliveries.c.state, func.count())
                                     .group_by(deliveries.c.state)).all())
        # the survivors took the dead worker's claimed rows over and sent them
        assert dead.dead_at is not None
        assert left.get("claimed", 0) == 0 and left.get("pending", 0) == 0, left
        final = subprocess.run(cmd, env=env_for(world), capture_output=True, text=True,
                               timeout=300)
        got = delivered(server)
    status = subprocess.run(cmd[:cmd.index("send")] + ["status", str(world.issue)],
                            env=env_for(world), capture_output=True, text=True, timeout=120)
    assert "workers: 0 live, 1 dead" in status.stdout, status.stdout
    assert f"dead {socket.gethostname()} pid {victim.pid} since " in status.stdout
    # 5: the killed worker's in-flight rows are left ambiguous
    assert all(p.returncode in (0, 5) for p in procs if p is not victim), \
        [e[-2000:] for _, e in outs]
    assert final.returncode in (0, 5), final.stderr
    rows = ledger_rows(store)
    ambiguous = {e for e, s in rows.items() if s == "sending"}
    assert max(got.values()) == 1, "nobody got it twice"
    assert set(emails) - set(got) <= ambiguous, "undelivered only among the reported ambiguous"
    assert len(ambiguous) <= 2  # the killed worker's sessions
    assert {e for e, s in rows.items() if s == "sent"} | ambiguous == set(emails)
    if ambiguous:
        assert f"{len(ambiguous)} recipients were being sent when an earlier run stopped" \
            in final.stderr


def test_a_rate_holds_for_four_workers_together(world):
    """rate = "40/s" with 4 workers: 40/s +-10% at the receiving side, not 160/s."""
    world.make_list(1500)
    store = world.store()
    with FakeSMTPServer() as server:
        add_sender(world, "limited", server.port, 'rate = "40/s"\nconnections = 2')
        stamps: list[float] = []

        class Clocked(list):
            def append(self, item):
                stamps.append(time.monotonic())
                super().append(item)

        server.messages = Clocked(server.messages)
        procs = start(world, send_cmd(world, "limited"), 4)

        def all_running() -> bool:
            with store.engine.connect() as conn:
                return conn.execute(select(func.count()).select_from(workers)).scalar_one() == 4

        assert wait_until(all_running, 120), [p.poll() for p in procs]
        t0 = time.monotonic() + 0.5
        time.sleep(11.0)
        for p in procs:
            p.send_signal(signal.SIGTERM)
        outs = [p.communicate(timeout=60) for p in procs]
    in_window = [s for s in stamps if t0 <= s < t0 + 10.0]
    assert 360 <= len(in_window) <= 440, len(in_window)
    assert sum(1 for n in sent_by(outs) if n) >= 2, outs  # the workers shared it


def test_a_daily_quota_holds_across_workers_and_runs(world):
    emails = world.make_list(100)
    with FakeSMTPServer() as server:
        add_sender(world, "daily", server.port, "rate_per_day = 30\nconnections = 2")
        cmd = send_cmd(world, "daily")
        procs = start(world, cmd, 4)
        outs = [p.communicate(timeout=300) for p in procs]
        assert sum(sent_by(outs)) == 30, outs
        again = subprocess.run(cmd, env=env_for(world), capture_output=True, text=True,
                               timeout=120)
        got = delivered(server)
    assert again.returncode == 5, again.stderr
    assert "reached its per-day limit (30)" in again.stderr
    assert sum(got.values()) == 30 and max(got.values()) == 1
    assert set(got) <= set(emails)
