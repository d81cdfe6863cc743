"""Ledger ceiling: rows/s one PostgreSQL claims and records for 1, 2 and 4 workers.

    python bench/ledger_ceiling.py [--rows 20000] [--workers 1,2,4] [--batch 16]
                                   [--postgres URL | --sqlite]

Each worker is a process running the real ``Dispatcher`` on one shared
dispatch with the ``memory`` sender (no network; messages are personalised,
handed over ``--batch`` at a time like 16 SMTP sessions, and dropped), so
what is timed is claim -> personalise -> mark sending -> record, the
ledger's whole round. Without ``--postgres`` a throw-away PostgreSQL is
started with ``scripts/start-postgres.sh`` and stopped at the end; with
``--sqlite`` the same round runs on a throw-away SQLite file (the embedded
default: the workers' CPU per row is then the ledger's whole cost).

Printed per worker count: rows/s for the fleet, the workers' CPU per row,
and PostgreSQL's own CPU per row (postmaster and backends, from /proc), so
``1e6 / PG us per row`` is the rows/s one PostgreSQL core can carry: divided
by one machine's measured SMTP throughput (``bench/dispatch.py``), it says
how many sending machines one PostgreSQL can feed (docs/scale-out.md). On a
2-core machine the workers and PostgreSQL share the cores, so the fleet
figure is a floor; the per-row PostgreSQL CPU is the number that scales.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = "bench-secret-0123456789abcdef"


def make_project(folder: Path) -> Path:
    shutil.copytree(ROOT / "issues", folder / "issues")
    shutil.copytree(ROOT / "layouts", folder / "layouts")
    shutil.copy(ROOT / "pbtp-mailer.toml", folder / "pbtp-mailer.toml")
    return folder / "pbtp-mailer.toml"


def env_for(url: str) -> dict[str, str]:
    return dict(os.environ, PBTP_MAILER_SECRET=SECRET, PBTP_MAILER_DATABASE_URL=url)


def reset_and_import(config_path: Path, url: str, rows: int) -> None:
    from sqlalchemy import text

    from pbtp_mailer.config import load_config
    from pbtp_mailer.store import Store
    from pbtp_mailer.store.db import open_engine

    if url.startswith("sqlite:///"):  # a fresh database per run: a new file
        for suffix in ("", "-wal", "-shm"):
            Path(url[len("sqlite:///"):] + suffix).unlink(missing_ok=True)
    else:
        engine = open_engine(url)
        with engine.begin() as conn:  # a fresh database per run (bench only, not the package)
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    csv_path = config_path.parent / "list.csv"
    with csv_path.open("w", encoding="utf-8") as fh:
        fh.write("email,name\n")
        fh.writelines(f"reader{i:07d}@example.net,Reader {i}\n" for i in range(rows))
    config = load_config(config_path, environ=env_for(url))
    with Store.open(config) as store:
        store.create_list("bench")
        store.import_csv("bench", csv_path)


def worker(config_path: str, url: str, batch: int, go: Any, out: Any) -> None:
    from pbtp_mailer.config import load_config
    from pbtp_mailer.dispatch.dispatcher import Dispatcher, DispatchOptions, plan_dispatch
    from pbtp_mailer.senders.memory import MemorySender
    from pbtp_mailer.store import Store

    class DroppingMemorySender(MemorySender):
        """The memory sender, forgetting each batch once it has answered for it."""

        def send(self, batch_: Any) -> Any:
            results = super().send(batch_)
            self.outbox.clear()
            MemorySender.reset()
            return results

    config = load_config(config_path, environ=env_for(url))
    with Store.open(config) as store:
        options = DispatchOptions(list_name="bench", sender="memory://", concurrency=batch)
        plan = plan_dispatch(Path(config_path).parent / "issues" / "2024-03.yaml", config,
                             store, options)
        sender = DroppingMemorySender(batch_size=batch)
        go.wait(120)
        cpu0, t0 = time.process_time(), time.time()
        report = Dispatcher(plan, options, sender=sender).run()
        out.put({"sent": report.sent, "cpu": time.process_time() - cpu0, "start": t0,
                 "end": time.time()})


def postgres_cpu(datadir: Path) -> float:
    """CPU seconds of this PostgreSQL: the postmaster, its reaped children, its live ones."""
    tick = os.sysconf("SC_CLK_TCK")
    master = int((datadir / "postmaster.pid").read_text().split()[0])
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(") ", 1)[1].split()
        ppid, utime, stime, cutime, cstime = (int(fields[1]), int(fields[11]), int(fields[12]),
                                              int(fields[13]), int(fields[14]))
        if int(pid) == master:
            total += (utime + stime + cutime + cstime) / tick
        elif ppid == master:
            total += (utime + stime) / tick
    return total


def run_fleet(config_path: Path, url: str, datadir: Path | None, n_workers: int,
              batch: int) -> dict[str, float]:
    ctx = multiprocessing.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(str(config_path), url, batch, go, out))
             for _ in range(n_workers)]
    for p in procs:
        p.start()
    time.sleep(3.0 + n_workers)  # let every worker compose and plan before the start
    pg0 = postgres_cpu(datadir) if datadir else 0.0
    go.set()
    results: list[dict[str, Any]] = []
    deadline = time.monotonic() + 3600
    while len(results) < len(procs) and time.monotonic() < deadline:
        try:
            results.append(out.get(timeout=2))
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs):
                raise SystemExit("a worker failed (its traceback is above)") from None
    pg = (postgres_cpu(datadir) - pg0) if datadir else 0.0
    for p in procs:
        p.join(60)
    sent = sum(r["sent"] for r in results)
    wall = max(r["end"] for r in results) - min(r["start"] for r in results)
    return {"sent": sent, "wall": wall, "cpu": sum(r["cpu"] for r in results), "pg_cpu": pg,
            "per_worker": [r["sent"] for r in results]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--postgres", default=None, help="an existing, empty-able PostgreSQL URL")
    ap.add_argument("--sqlite", action="store_true", help="a throw-away SQLite file instead")
    args = ap.parse_args()
    rows = max(100, min(args.rows, 500_000))
    url, datadir = args.postgres, None
    scratch = tempfile.TemporaryDirectory() if args.sqlite else None
    if scratch is not None:
        url = f"sqlite:///{scratch.name}/bench.db"
    elif url is None:
        port = 20000 + os.getpid() % 20000
        started = subprocess.run(["bash", str(ROOT / "scripts" / "start-postgres.sh"),
                                  str(port)], capture_output=True, text=True, check=True)
        url = started.stdout.strip()
        found = re.search(r"data in (\S+)\)", started.stderr)
        datadir = Path(found.group(1)) / "data" if found else None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = make_project(Path(tmp))
            kind = "SQLite" if scratch is not None else "PostgreSQL"
            print(f"{rows:,} rows per run, memory sender, {args.batch} per batch, {kind}")
            for n in [int(w) for w in args.workers.split(",")]:
                reset_and_import(cfg, url, rows)
                r = run_fleet(cfg, url, datadir, n, args.batch)
                rate = r["sent"] / r["wall"]
                pg_us = r["pg_cpu"] / r["sent"] * 1e6 if r["sent"] else 0.0
                ceiling = f"{1e6 / pg_us:,.0f} rows/s per PostgreSQL core" if pg_us else "-"
                print(f"{n} worker(s): {rate:8,.0f} rows/s claimed+recorded; workers' CPU "
                      f"{r['cpu'] / r['sent'] * 1e6:5.0f} us/row; PostgreSQL CPU "
                      f"{pg_us:4.0f} us/row ({ceiling}); split {r['per_worker']}")
                print(json.dumps({"workers": n, **r}), file=sys.stderr)
    finally:
        if scratch is not None:
            scratch.cleanup()
        if args.postgres is None and datadir is not None:
            subprocess.run(["bash", str(ROOT / "scripts" / "start-postgres.sh"), "--stop",
                            str(datadir.parent)], capture_output=True, check=False)


if __name__ == "__main__":
    main()
