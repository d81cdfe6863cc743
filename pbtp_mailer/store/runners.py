"""Dispatcher processes and their heartbeats.

A row is ``sending`` only while its owner's batch is on the wire. Whether the
owner is still alive tells a live dispatcher's rows from a crashed one's
(ambiguous): it must have beaten its heart within ``DEAD_AFTER`` and, on this
host, its pid must still run (a zombie does not count).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket

from sqlalchemy import Connection, Engine, select

from pbtp_mailer.store.db import write_transaction
from pbtp_mailer.store.ledger_schema import runners

__all__ = ["DEAD_AFTER", "new_owner", "register", "unregister", "beat", "live_owners",
           "pid_alive"]

DEAD_AFTER = dt.timedelta(minutes=2)


def new_owner() -> str:
    """``host:pid:random``: unique per dispatcher process."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def register(engine: Engine, owner: str, now: dt.datetime) -> None:
    host, pid, _ = owner.rsplit(":", 2)
    with write_transaction(engine) as conn:
        conn.execute(runners.delete().where(runners.c.owner == owner))
        conn.execute(runners.insert().values(owner=owner, host=host, pid=int(pid),
                                             started_at=now, heartbeat_at=now))


def unregister(engine: Engine, owner: str) -> None:
    with write_transaction(engine) as conn:
        conn.execute(runners.delete().where(runners.c.owner == owner))


def beat(conn: Connection, owner: str, now: dt.datetime) -> None:
    conn.execute(runners.update().where(runners.c.owner == owner).values(heartbeat_at=now))


def live_owners(engine: Engine, now: dt.datetime) -> set[str]:
    me = socket.gethostname()
    live = set()
    with engine.connect() as conn:
        for r in conn.execute(select(runners)):
            beat_at = r.heartbeat_at
            if beat_at is not None and beat_at.tzinfo is None:
                beat_at = beat_at.replace(tzinfo=dt.UTC)
            if beat_at is None or beat_at < now - DEAD_AFTER:
                continue
            if r.host == me and not pid_alive(r.pid):
                continue
            live.add(r.owner)
    return live


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped) is not alive
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True
