"""The ledger's per-batch SQL, prepared once.

On SQLite these statements run on the driver's cursor (about a third of the
cost of going through SQLAlchemy for each batch), with datetimes written in
SQLAlchemy's SQLite storage format so that both read them back alike; on
PostgreSQL they go through SQLAlchemy ``text()`` with ``FOR UPDATE SKIP
LOCKED`` where rows are claimed.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, DateTime, bindparam, text

__all__ = ["BatchStatement", "many", "mark_sending", "reserve_rows", "HISTORY_MARK",
           "ADVISORY_LOCK", "RECORD", "MARK_SENDING", "CLAIM", "SKIP", "RELEASE", "RELEASE_DEAD"]


def sql(statement: str, *datetimes: str) -> Any:
    """A prepared statement; datetime parameters keep SQLAlchemy's type handling."""
    return text(statement).bindparams(
        *(bindparam(name, type_=DateTime(timezone=True)) for name in datetimes))


class BatchStatement:
    """A per-batch statement: SQLAlchemy ``text()`` and a qmark twin for SQLite."""

    def __init__(self, statement: str, *datetimes: str) -> None:
        self.text = sql(statement, *datetimes)
        self.keys = re.findall(r":(b_\w+)", statement)
        self.qmark = re.sub(r":b_\w+", "?", statement)
        self.datetimes = frozenset(datetimes)


def _sqlite_time(value: Any) -> Any:
    """A datetime as SQLAlchemy stores it in SQLite (UTC, no offset)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def many(conn: Connection, stmt: BatchStatement, rows: list[dict[str, Any]]) -> None:
    """Run ``stmt`` once per row (SQLite: straight on the driver's cursor)."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        raw = conn.connection.driver_connection
        assert raw is not None
        seen: dict[Any, Any] = {}  # a batch shares a few timestamps: format each once

        def stored(value: Any) -> Any:
            if isinstance(value, dt.datetime):
                if value not in seen:
                    seen[value] = _sqlite_time(value)
                return seen[value]
            return value

        raw.executemany(stmt.qmark, [tuple(stored(r[k]) for k in stmt.keys) for r in rows])
    else:
        conn.execute(stmt.text, rows)


def reserve_rows(conn: Connection, dispatch_id: int, now: dt.datetime, n: int) -> list[Any]:
    """Up to ``n`` due rows: pending ones first, then deferred ones whose time has come."""
    out: list[Any] = []
    for pg, qmark in zip(RESERVE_PG, RESERVE, strict=True):
        want = n - len(out)
        if want <= 0:
            break
        params = {"b_dispatch": dispatch_id, "b_now": now, "b_n": want}
        if conn.dialect.name != "sqlite":
            out.extend(conn.execute(pg, {k: v for k, v in params.items()
                                         if k != "b_now" or k in qmark.keys}).all())
            continue
        raw = conn.connection.driver_connection
        assert raw is not None
        for row in raw.execute(qmark.qmark, [_sqlite_time(params[k]) for k in qmark.keys]):
            first = row[6]
            if isinstance(first, str):
                first = dt.datetime.fromisoformat(first).replace(tzinfo=dt.UTC)
            out.append(_ReservedRow(row[0], row[1], row[2], row[3], row[4], row[5], first,
                                    row[7], row[8]))
    return out


@dataclass(frozen=True, slots=True)
class _ReservedRow:
    id: int
    subscriber_id: int
    list_id: int
    email: str
    message_id: str | None
    attempts: int
    first_attempt_at: dt.datetime | None
    name: str | None
    attrs: Any


HISTORY_MARK = text("SELECT max(id) FROM status_history")
ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
# Two queries, each an index range on (dispatch_id, state, id): one with an OR of
# both states scans the whole dispatch and sorts it, on every reservation.
RESERVE_SQL = (
    "SELECT d.id, d.subscriber_id, d.list_id, d.email, d.message_id, d.attempts, "
    "d.first_attempt_at, s.name, s.attrs FROM deliveries d "
    "LEFT JOIN subscribers s ON s.id = d.subscriber_id WHERE d.dispatch_id = :b_dispatch AND ")
PENDING_SQL = RESERVE_SQL + "d.state = 'pending' ORDER BY d.id LIMIT :b_n"
DUE_SQL = (RESERVE_SQL + "d.state = 'deferred' AND d.next_attempt_at <= :b_now "
            "ORDER BY d.id LIMIT :b_n")
RESERVE = (BatchStatement(PENDING_SQL), BatchStatement(DUE_SQL, "b_now"))
RESERVE_PG = tuple(
    sql(q + " FOR UPDATE OF d SKIP LOCKED", *(["b_now"] if ":b_now" in q else []))
    .columns(first_attempt_at=DateTime(timezone=True)) for q in (PENDING_SQL, DUE_SQL))
RECORD = BatchStatement(
    "UPDATE deliveries SET state = :b_state, last_code = :b_code, last_text = :b_text, "
    "provider_id = :b_provider, next_attempt_at = :b_next, sent_at = :b_sent, "
    "claimed_by = NULL, updated_at = :b_now WHERE id = :b_id", "b_next", "b_sent", "b_now")
# Only a row still 'claimed' by this owner: after a worker lost its lease (the others
# took its claims over) it must not put a row on the wire that may be another's now.
MARK_SENDING = BatchStatement(
    "UPDATE deliveries SET state = 'sending', attempts = :b_att, "
    "first_attempt_at = :b_first, updated_at = :b_now "
    "WHERE id = :b_id AND state = 'claimed' AND claimed_by = :b_owner", "b_first", "b_now")
STILL_SENDING = "SELECT id FROM deliveries WHERE state = 'sending' AND claimed_by = ? AND id IN "


def mark_sending(conn: Connection, owner: str, batch: list[Any], now: dt.datetime) -> set[int]:
    """Mark ``batch`` (claimed rows) 'sending' if this owner still holds them; the ids marked.

    One executemany (SQLite: on the driver); both drivers sum the rows changed, so only
    when fewer changed than asked (rare: another worker took claims over) a query says
    which."""
    ids = {c.id for c in batch}
    if conn.dialect.name != "sqlite":
        changed = conn.execute(MARK_SENDING.text, [
            {"b_id": c.id, "b_att": c.attempts, "b_first": c.first_attempt_at, "b_now": now,
             "b_owner": owner} for c in batch]).rowcount
        if changed == len(batch):
            return ids
        rows = conn.execute(text("SELECT id FROM deliveries WHERE id = ANY(:b_ids) AND "
                                 "state = 'sending' AND claimed_by = :b_owner"),
                            {"b_ids": list(ids), "b_owner": owner})
        return {r[0] for r in rows}
    raw = conn.connection.driver_connection
    assert raw is not None
    stamp = _sqlite_time(now)
    cur = raw.executemany(MARK_SENDING.qmark, [
        (c.attempts, _sqlite_time(c.first_attempt_at), stamp, c.id, owner) for c in batch])
    ids = {c.id for c in batch}
    if cur.rowcount == len(batch):
        return ids
    marks = ", ".join("?" * len(ids))
    return {r[0] for r in raw.execute(f"{STILL_SENDING}({marks})", (owner, *ids))}
CLAIM = BatchStatement(
    "UPDATE deliveries SET state = 'claimed', claimed_by = :b_owner, message_id = :b_mid, "
    "updated_at = :b_now WHERE id = :b_id", "b_now")
SKIP = sql(
    "UPDATE deliveries SET state = 'skipped', last_text = 'suppressed at send time', "
    "claimed_by = NULL, updated_at = :b_now WHERE id = :b_id", "b_now")
RELEASE = sql(
    "UPDATE deliveries SET state = 'pending', claimed_by = NULL, attempts = :b_att, "
    "last_text = :b_text, updated_at = :b_now WHERE id = :b_id", "b_now")
RELEASE_DEAD = sql(
    "UPDATE deliveries SET state = 'pending', claimed_by = NULL, last_text = :b_text, "
    "updated_at = :b_now WHERE id = :b_id AND state = 'claimed'", "b_now")
