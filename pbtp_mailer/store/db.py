"""Engine creation: one SQLAlchemy ``Engine`` per database URL.

SQLite is the embedded default and gets the pragmas a small multi-process
tool needs (WAL so the unsubscribe server can read while a dispatch writes,
foreign keys, a busy timeout instead of instant "database is locked",
``synchronous=NORMAL`` which is safe under WAL). Python's ``sqlite3`` module
commits implicitly around DDL, so transactions are begun by hand here:
that is what makes migrations all-or-nothing. A connection carrying the
execution option ``immediate=True`` begins with ``BEGIN IMMEDIATE`` so a
writer takes the write lock up front instead of failing on upgrade.
``hot_transaction`` is the same for the ledger's per-batch writes, begun and
committed on the SQLite driver (a third of the cost per transaction).

``postgresql://`` and ``postgres://`` URLs are routed to psycopg 3.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Insert,
    String,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from pbtp_mailer.errors import StoreError

__all__ = ["open_engine", "safe_url", "write_transaction", "hot_transaction", "insert_ignore",
           "bulk_insert", "in_chunk_size", "key_in"]

BUSY_TIMEOUT_MS = 10_000


def safe_url(url: str) -> str:
    """The URL with any password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _normalise_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def open_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; for a SQLite file, its folder is created first."""
    url = _normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"database URL {url!r} is not a valid SQLAlchemy URL") from None
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite and parsed.database and parsed.database != ":memory:":
        if not parsed.database.startswith("file:"):
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # messages must never carry bound parameters: they are subscribers' addresses
    kwargs.setdefault("hide_parameters", True)
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        pg = parsed.get_backend_name() == "postgresql"
        hint = 'pip install "psycopg[binary]"' if pg else None
        raise StoreError(f"{safe_url(url)}: no database driver ({exc})", hint=hint) from None
    if is_sqlite:
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see below)
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA synchronous=NORMAL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
            return  # begun on the driver by hot_transaction: SQLAlchemy joins it
        immediate = conn.get_execution_options().get("immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that takes the write lock at once (SQLite)."""
    with engine.connect() as conn:
        conn.execution_options(immediate=True)
        with conn.begin():
            yield conn


@contextmanager
def hot_transaction(engine: Engine) -> Iterator[Connection]:
    """``write_transaction`` for the ledger's few statements per batch, thousands a minute.

    On SQLite ``BEGIN IMMEDIATE`` and the commit go straight to the driver:
    SQLAlchemy's transaction costs ~35 us of CPU per batch, as much as the
    batch's own statements. Anything executed through SQLAlchemy inside (the
    rare paths: a suppression, a heartbeat) joins the driver's transaction.
    PostgreSQL: ``write_transaction``."""
    if engine.dialect.name != "sqlite":
        with write_transaction(engine) as conn:
            yield conn
        return
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:  # wrapped as SQLAlchemy would (the CLI's translation)
            raise DBAPIError.instance("BEGIN IMMEDIATE", (), exc, sqlite3.Error) from None
        try:
            yield conn
        except BaseException:
            if conn.in_transaction():
                conn.rollback()
            if raw.in_transaction:
                raw.rollback()
            raise
        if conn.in_transaction():
            conn.commit()
        else:
            raw.commit()


def insert_ignore(conn: Connection, table: Table, *keys: str) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING`` for SQLite and PostgreSQL."""
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing(index_elements=list(keys))
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=list(keys))
    raise StoreError(f"database {conn.dialect.name!r} is not supported (SQLite or PostgreSQL)")


def bulk_insert(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]],
                *, ignore_conflict: Sequence[str] = ()) -> None:
    """``executemany`` of ``rows`` straight to the driver (5-10x less overhead than Core).

    Values go through each column type's own bind processor, so they are
    stored exactly as Core would store them. ``ignore_conflict`` names the
    unique columns of ``ON CONFLICT (...) DO NOTHING`` (SQLite, PostgreSQL).
    """
    if not rows:
        return
    dialect = conn.dialect
    names = list(rows[0])
    procs = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names]
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    if dialect.paramstyle not in ("qmark", "format", "pyformat"):
        raise StoreError(f"bulk insert: unsupported paramstyle {dialect.paramstyle!r}")
    prep = dialect.identifier_preparer
    sql = (f"INSERT INTO {prep.format_table(table)} "
           f"({', '.join(prep.quote(n) for n in names)}) "
           f"VALUES ({', '.join([mark] * len(names))})")
    conflict = ""
    if ignore_conflict:
        conflict = f" ON CONFLICT ({', '.join(prep.quote(n) for n in ignore_conflict)}) DO NOTHING"
    pairs = [(n, _last_value_cache(p) if p is not None else None)
             for n, p in zip(names, procs, strict=True)]
    params = [tuple(p(r[n]) if p is not None else r[n] for n, p in pairs) for r in rows]
    if dialect.name != "postgresql":
        conn.exec_driver_sql(sql + conflict, params)
        return
    # psycopg pipelines executemany but pays per statement: send 50 rows per
    # statement, short enough for psycopg to cache its parse.
    per = 50
    group = f"({', '.join([mark] * len(names))})"
    head = sql[: sql.index(" VALUES ")] + " VALUES "
    full = len(params) - len(params) % per
    batches = [tuple(v for row in params[i:i + per] for v in row) for i in range(0, full, per)]
    if batches:
        conn.exec_driver_sql(head + ", ".join([group] * per) + conflict, batches)
    if full < len(params):
        rest = params[full:]
        conn.exec_driver_sql(head + ", ".join([group] * len(rest)) + conflict,
                             tuple(v for row in rest for v in row))


def _last_value_cache(proc: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Bulk rows repeat the same timestamp object: convert it once."""
    last: list[Any] = [object(), None]

    def convert(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, proc(value)
        return last[1]

    return convert


def in_chunk_size(conn: Connection) -> int:
    """How many values one ``key_in`` may carry on this database."""
    if conn.dialect.name == "sqlite":
        import sqlite3

        return 900 if sqlite3.sqlite_version_info < (3, 32) else 5000
    return 50_000


def key_in(conn: Connection, column: ColumnElement[Any], values: Sequence[str]) -> Any:
    """``column IN (values)``; on PostgreSQL ``= ANY(array)``, one parameter, cheap to parse."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
    return column.in_(values)
