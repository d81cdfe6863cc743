"""Named, transactional schema migrations.

``MIGRATIONS`` is an ordered, append-only list. ``migrate(engine)`` applies
the ones whose name is not yet in ``schema_migrations(name, applied_at)``,
each in its own transaction together with its bookkeeping row, so a failure
leaves the database exactly as the previous migration left it (SQLite DDL is
transactional here because ``db.py`` emits ``BEGIN`` itself; PostgreSQL DDL
is transactional anyway). Concurrent ``migrate`` calls serialise on the
write lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock) and each
re-checks what is applied inside its transaction.

Appending a migration is one line. Define the new tables on
``schema.metadata`` (in ``schema.py`` or a module imported before
``migrate`` runs) and add, at the end of ``MIGRATIONS``::

    Migration("0002_ledger", create_tables("dispatches", "deliveries")),

or pass any ``fn(conn: Connection) -> None``. Rules:

* never rename, reorder or edit a released migration; only append;
* a released table's definition is frozen: to add a column, change
  ``schema.py`` *and* append ``Migration("0003_x", add_column("t", "c"))``,
  which is a no-op on fresh databases where ``create_tables`` already made
  the column.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, Connection, DateTime, Engine, MetaData, String, Table, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from pbtp_mailer.errors import StoreError
from pbtp_mailer.store import feedback_schema as _feedback_schema  # feedback tables
from pbtp_mailer.store import ledger_schema as _ledger_schema  # noqa: F401  (defines the ledger tables)
from pbtp_mailer.store import schedule_schema as _schedule_schema  # noqa: F401  (defines schedule_seen)
from pbtp_mailer.store import schema
from pbtp_mailer.store import subscribe_schema as _subscribe_schema
from pbtp_mailer.store import workers_schema as _workers_schema  # noqa: F401  (rate_buckets, workers)
from pbtp_mailer.store.db import write_transaction

__all__ = [
    "Migration",
    "MIGRATIONS",
    "migrate",
    "applied_migrations",
    "create_tables",
    "add_column",
]

_bookkeeping = MetaData()
schema_migrations = Table(
    "schema_migrations",
    _bookkeeping,
    Column("name", String(200), primary_key=True),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Migration:
    name: str
    apply: Callable[[Connection], None]


def create_tables(*names: str) -> Callable[[Connection], None]:
    """A migration step creating the named tables of ``schema.metadata`` (and their indexes)."""

    def step(conn: Connection) -> None:
        for name in names:
            schema.metadata.tables[name].create(conn)

    return step


def add_column(table: str, column: str) -> Callable[[Connection], None]:
    """A migration step adding ``schema.metadata.tables[table].c[column]`` if it is missing."""

    def step(conn: Connection) -> None:
        if column in {c["name"] for c in inspect(conn).get_columns(table)}:
            return
        col = schema.metadata.tables[table].c[column]
        ddl_type = col.type.compile(dialect=conn.dialect)
        null = "" if col.nullable else " NOT NULL"
        conn.exec_driver_sql(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {ddl_type}{null}')

    return step


def _add_pause_reason(conn: Connection) -> None:
    """``dispatches.pause_reason``; a dispatch paused before it existed gets the reason its
    note states (``N consecutive failures; ...`` or, otherwise, an unreachable sender)."""
    import re

    from pbtp_mailer.store.ledger_schema import dispatches

    add_column("dispatches", "pause_reason")(conn)
    paused = conn.execute(select(dispatches.c.id, dispatches.c.note)
                          .where(dispatches.c.state == "paused")).all()
    for row in paused:
        failing = re.match(r"\d+ consecutive failures", row.note or "")
        reason = "consecutive_failures" if failing else "sender_unavailable"
        conn.execute(dispatches.update().where(dispatches.c.id == row.id)
                     .values(pause_reason=reason))


MIGRATIONS: list[Migration] = [
    Migration(
        "0001_subscribers",
        create_tables("lists", "subscribers", "memberships", "suppressions", "status_history"),
    ),
    Migration("0002_ledger", create_tables("dispatches", "deliveries", "runners", "rate_usage")),
    Migration("0003_schedule", create_tables("schedule_seen")),
    Migration("0004_pause_reason", _add_pause_reason),
    Migration("0005_feedback", _feedback_schema.create_feedback_tables),
    Migration("0006_subscribe", create_tables(*_subscribe_schema.SUBSCRIBE_TABLES)),
    Migration("0007_headers_hash", add_column("dispatches", "headers_hash")),
    Migration("0009_workers", create_tables("rate_buckets", "workers")),
    Migration("0010_provider_id_partial", _feedback_schema.partial_provider_index),
]


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        key = zlib.crc32(b"pbtp_mailer.migrate")
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({key})")


def applied_migrations(engine: Engine) -> list[str]:
    """Names recorded in ``schema_migrations`` (empty for a new database)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("schema_migrations"):
            return []
        rows = conn.execute(
            schema_migrations.select().order_by(schema_migrations.c.applied_at)
        ).all()
        return [r.name for r in rows]


def migrate(engine: Engine, migrations: Sequence[Migration] | None = None) -> list[str]:
    """Apply the missing migrations in order; return the names applied now."""
    todo = list(MIGRATIONS if migrations is None else migrations)
    known = {m.name for m in todo}
    if len(known) != len(todo):
        raise StoreError("duplicate migration names")
    done: list[str] = []
    where = engine.url.render_as_string(hide_password=True)
    current = "schema_migrations"
    try:
        with write_transaction(engine) as conn:
            _lock(conn)
            schema_migrations.create(conn, checkfirst=True)
        for m in todo:
            current = m.name
            with write_transaction(engine) as conn:
                _lock(conn)
                applied = {r[0] for r in conn.execute(schema_migrations.select())}
                unknown = sorted(applied - known)
                if unknown:
                    raise StoreError(
                        f"{where}: database has migrations this version does not know: "
                        f"{', '.join(unknown)}",
                        hint="upgrade pbtp-mailer",
                    )
                if m.name in applied:
                    continue
                m.apply(conn)
                conn.execute(
                    schema_migrations.insert().values(name=m.name, applied_at=datetime.now(UTC))
                )
                done.append(m.name)
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise StoreError(
            f"{where}: migration {current} failed and was rolled back: {reason}"
        ) from None
    return done
