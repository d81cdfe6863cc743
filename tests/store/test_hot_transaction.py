"""``hot_transaction``: the ledger's per-batch transaction (SQLite: begun on the driver).

Statements on the driver and through SQLAlchemy inside it commit together or
not at all, and the write lock is taken at once, as ``write_transaction`` does.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from pbtp_mailer.store import Store
from pbtp_mailer.store.db import hot_transaction, write_transaction
from pbtp_mailer.store.ledger_schema import runners


def _runner(conn, owner: str, store: Store) -> None:
    now = store.clock()
    conn.execute(runners.insert().values(owner=owner, host="h", pid=1, started_at=now,
                                         heartbeat_at=now))


def _count(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(runners)).scalar_one()


def test_sqlalchemy_statements_join_and_commit(store: Store) -> None:
    with hot_transaction(store.engine) as conn:
        _runner(conn, "a", store)  # through SQLAlchemy, inside the driver's transaction
        _runner(conn, "b", store)
    assert _count(store) == 2
    with write_transaction(store.engine) as conn:  # the ordinary path still works after
        _runner(conn, "c", store)
    assert _count(store) == 3


def test_an_error_rolls_everything_back(store: Store) -> None:
    with pytest.raises(RuntimeError), hot_transaction(store.engine) as conn:
        _runner(conn, "a", store)
        raise RuntimeError("boom")
    assert _count(store) == 0
    with hot_transaction(store.engine) as conn:  # the pooled connection is usable again
        _runner(conn, "b", store)
    assert _count(store) == 1


def test_driver_only_transaction_commits(store: Store) -> None:
    if store.engine.dialect.name != "sqlite":
        pytest.skip("the driver path is SQLite's")
    with hot_transaction(store.engine) as conn:
        raw = conn.connection.driver_connection
        assert raw.in_transaction  # BEGIN IMMEDIATE: the write lock is held already
        raw.execute("INSERT INTO runners (owner, host, pid, started_at, heartbeat_at) "
                    "VALUES ('raw', 'h', 1, '2026-03-01 12:00:00.000000', "
                    "'2026-03-01 12:00:00.000000')")
    assert _count(store) == 1
