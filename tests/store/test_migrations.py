"""Named, transactional migrations: all or nothing, in order, once."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection, inspect, text

from pbtp_mailer.errors import StoreError
from pbtp_mailer.store import Store
from pbtp_mailer.store.db import open_engine
from pbtp_mailer.store.migrations import MIGRATIONS, Migration, applied_migrations, migrate


@pytest.fixture
def engine(tmp_path: Path):
    e = open_engine(f"sqlite:///{tmp_path / 'sub' / 'dir' / 'm.sqlite3'}")
    try:
        yield e
    finally:
        e.dispose()


def test_sqlite_pragmas_and_parent_dir(engine, tmp_path: Path) -> None:
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    assert (tmp_path / "sub" / "dir").is_dir()


def test_failing_migration_leaves_nothing_behind(engine) -> None:
    def half(conn: Connection) -> None:
        conn.execute(text("CREATE TABLE half_a (x INTEGER)"))
        conn.execute(text("INSERT INTO half_a VALUES (1)"))
        conn.execute(text("CREATE TABLE half_b (x INTEGER REFERENCES nowhere_at_all)"))
        conn.execute(text("SELECT * FROM no_such_table"))

    steps = [*MIGRATIONS, Migration("0099_broken", half)]
    with pytest.raises(StoreError) as exc:
        migrate(engine, steps)
    assert "migration 0099_broken failed and was rolled back: no such table: no_such_table" in str(
        exc.value)
    tables = set(inspect(engine).get_table_names())
    assert "half_a" not in tables and "half_b" not in tables
    assert "lists" in tables
    assert applied_migrations(engine) == [m.name for m in MIGRATIONS]


def test_appended_migration_runs_once(engine) -> None:
    calls = []

    def add(conn: Connection) -> None:
        calls.append(1)
        conn.execute(text("CREATE TABLE ledger_demo (id INTEGER PRIMARY KEY)"))

    steps = [*MIGRATIONS, Migration("9002_demo", add)]
    assert migrate(engine, steps) == [*(m.name for m in MIGRATIONS), "9002_demo"]
    assert migrate(engine, steps) == []
    assert calls == [1]


def test_database_from_a_newer_version_is_refused(engine) -> None:
    migrate(engine, [*MIGRATIONS, Migration("0777_future", lambda c: None)])
    with pytest.raises(StoreError, match="database has migrations this version does not know: "
                                         "0777_future"):
        Store(engine)


def test_store_open_from_config(config_path: Path) -> None:
    from pbtp_mailer.config import load_config

    cfg = load_config(config_path, environ={})
    with Store.open(cfg) as s:
        s.create_list("news")
    assert (config_path.parent / "data" / "mailer.sqlite3").is_file()
