"""The ledger's per-batch SQL, prepared once.

The statements that run for every batch (record the replies, claim, mark
sending) go straight to the driver: through SQLAlchemy they cost about as
much CPU as the statements themselves. SQLite: ``executemany`` of one tuple
per row, datetimes written in SQLAlchemy's SQLite storage format (so that
both read them back alike), each distinct value formatted once per batch.
PostgreSQL: one ``UPDATE ... FROM json_to_recordset(rows)`` per batch, as
one executemany row costs the server an executor start and psycopg a
pipeline round of its own. Rows are claimed with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL (SQLite's ``BEGIN IMMEDIATE`` already serialises writers).
The subscriber's attributes come as JSON text (most are ``{}``: not parsed).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, DateTime, bindparam, text

__all__ = ["BatchStatement", "record", "claim", "history_mark", "mark_sending",
           "reserve_rows", "HISTORY_MARK", "ADVISORY_LOCK", "RECORD", "MARK_SENDING", "CLAIM",
           "SKIP", "RELEASE", "RELEASE_DEAD"]


def sql(statement: str, *datetimes: str) -> Any:
    """A prepared statement; datetime parameters keep SQLAlchemy's type handling."""
    return text(statement).bindparams(
        *(bindparam(name, type_=DateTime(timezone=True)) for name in datetimes))


class BatchStatement:
    """A per-batch statement for sqlite3's driver: its ``qmark`` form, with ``keys`` (the
    named parameters) in the order of the tuples passed to it."""

    def __init__(self, statement: str) -> None:
        self.keys = re.findall(r":(b_\w+)", statement)
        self.qmark = re.sub(r":b_\w+", "?", statement)


def _sqlite_time(value: Any) -> Any:
    """A datetime as SQLAlchemy stores it in SQLite (UTC, no offset)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _time_param() -> Callable[[Any], Any]:
    """A datetime parameter for sqlite3, each distinct value of a batch (they share a few
    timestamps) formatted once."""
    seen: dict[Any, Any] = {None: None}

    def stored(value: Any) -> Any:
        if value not in seen:
            seen[value] = _sqlite_time(value)
        return seen[value]

    return stored


def _run_many(conn: Connection, stmt: BatchStatement, rows: list[tuple[Any, ...]]) -> int:
    """``executemany`` on sqlite3's cursor (in-process: no cheaper form); rows changed."""
    raw = conn.connection.driver_connection
    assert raw is not None
    return int(raw.executemany(stmt.qmark, rows).rowcount)


def _run_json(conn: Connection, statement: str, *params: Any) -> int:
    """One PostgreSQL statement for the whole batch, its rows one JSON parameter
    (``json_to_recordset``): the server runs one UPDATE instead of one per row, and
    ``json.dumps`` is C where psycopg's array dumping is Python. The rows changed."""
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur:
        cur.execute(statement, params)
        return int(cur.rowcount)


def _int_array(ids: Iterable[int]) -> str:
    """PostgreSQL's text form of an ``int[]`` (ids are ints: nothing to quote)."""
    return "{" + ",".join(str(int(i)) for i in ids) + "}"


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def record(conn: Connection, decisions: Sequence[Any], now: dt.datetime) -> None:
    """``RECORD`` for each decision (``Decision``): its state, reply and timestamps."""
    if conn.dialect.name != "sqlite":
        stamp = now.isoformat()
        _run_json(conn, RECORD_PG, now, json.dumps([
            {"id": o.id, "state": o.state, "code": o.code, "text": o.text[:2000],
             "provider": o.provider_id, "next": _iso(o.next_attempt_at),
             "sent": stamp if o.state == "sent" else None} for o in decisions]),
            _int_array(o.id for o in decisions))
        return
    when = _time_param()
    stamp = when(now)
    _run_many(conn, RECORD, [
        (o.state, o.code, o.text[:2000], o.provider_id, when(o.next_attempt_at),
         stamp if o.state == "sent" else None, stamp, o.id) for o in decisions])


def claim(conn: Connection, owner: str, rows: list[tuple[str, int]], now: dt.datetime) -> None:
    """``CLAIM`` each (Message-ID, row id) for ``owner``."""
    if conn.dialect.name != "sqlite":
        _run_json(conn, CLAIM_PG, owner, now, json.dumps([
            {"id": row_id, "mid": mid} for mid, row_id in rows]),
            _int_array(row_id for _, row_id in rows))
        return
    stamp = _time_param()(now)
    _run_many(conn, CLAIM, [(owner, mid, stamp, row_id) for mid, row_id in rows])


def history_mark(conn: Connection) -> Any:
    """The newest ``status_history`` id (None: none yet); a cheap index lookup, asked
    at every batch: on the driver's cursor."""
    raw = conn.connection.driver_connection
    assert raw is not None
    if conn.dialect.name == "sqlite":
        return raw.execute(HISTORY_MARK_SQL).fetchone()[0]
    with raw.cursor() as cur:
        row = cur.execute(HISTORY_MARK_SQL).fetchone()
    return row[0] if row else None


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


HISTORY_MARK_SQL = "SELECT max(id) FROM status_history"
HISTORY_MARK = text(HISTORY_MARK_SQL)
ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
# Two queries, each an index range on (dispatch_id, state, id): one with an OR of
# both states scans the whole dispatch and sorts it, on every reservation.
RESERVE_SQL = (
    "SELECT d.id, d.subscriber_id, d.list_id, d.email, d.message_id, d.attempts, "
    "d.first_attempt_at, s.name, CAST(s.attrs AS TEXT) AS attrs FROM deliveries d "
    "LEFT JOIN subscribers s ON s.id = d.subscriber_id WHERE d.dispatch_id = :b_dispatch AND ")
PENDING_SQL = RESERVE_SQL + "d.state = 'pending' ORDER BY d.id LIMIT :b_n"
DUE_SQL = (RESERVE_SQL + "d.state = 'deferred' AND d.next_attempt_at <= :b_now "
            "ORDER BY d.id LIMIT :b_n")
RESERVE = (BatchStatement(PENDING_SQL), BatchStatement(DUE_SQL))
RESERVE_PG = tuple(
    sql(q + " FOR UPDATE OF d SKIP LOCKED", *(["b_now"] if ":b_now" in q else []))
    .columns(first_attempt_at=DateTime(timezone=True)) for q in (PENDING_SQL, DUE_SQL))
RECORD = BatchStatement(
    "UPDATE deliveries SET state = :b_state, last_code = :b_code, last_text = :b_text, "
    "provider_id = :b_provider, next_attempt_at = :b_next, sent_at = :b_sent, "
    "claimed_by = NULL, updated_at = :b_now WHERE id = :b_id")
# Only a row still 'claimed' by this owner: after a worker lost its lease (the others
# took its claims over) it must not put a row on the wire that may be another's now.
MARK_SENDING = BatchStatement(
    "UPDATE deliveries SET state = 'sending', attempts = :b_att, "
    "first_attempt_at = :b_first, updated_at = :b_now "
    "WHERE id = :b_id AND state = 'claimed' AND claimed_by = :b_owner")
STILL_SENDING = "SELECT id FROM deliveries WHERE state = 'sending' AND claimed_by = ? AND id IN "


def mark_sending(conn: Connection, owner: str, batch: list[Any], now: dt.datetime) -> set[int]:
    """Mark ``batch`` (claimed rows) 'sending' if this owner still holds them; the ids marked.

    One statement on the driver (SQLite: an executemany), whose count of rows changed is
    checked: only when fewer changed than asked (rare: another worker took claims over)
    a query says which."""
    ids = {c.id for c in batch}
    if conn.dialect.name != "sqlite":
        changed = _run_json(conn, MARK_SENDING_PG, now, json.dumps([
            {"id": c.id, "att": c.attempts, "first": _iso(c.first_attempt_at)} for c in batch]),
            _int_array(ids), owner)
    else:
        when = _time_param()
        stamp = when(now)
        changed = _run_many(conn, MARK_SENDING, [
            (c.attempts, when(c.first_attempt_at), stamp, c.id, owner) for c in batch])
    if changed == len(batch):
        return ids
    if conn.dialect.name != "sqlite":
        rows = conn.execute(text("SELECT id FROM deliveries WHERE id = ANY(:b_ids) AND "
                                 "state = 'sending' AND claimed_by = :b_owner"),
                            {"b_ids": list(ids), "b_owner": owner})
        return {r[0] for r in rows}
    raw = conn.connection.driver_connection
    assert raw is not None
    marks = ", ".join("?" * len(ids))
    return {r[0] for r in raw.execute(f"{STILL_SENDING}({marks})", (owner, *ids))}


# PostgreSQL: the same three, one statement per batch (psycopg's %s parameters). The
# ids again as an array: the planner then finds the rows by primary key whatever its
# statistics say (joined to json_to_recordset alone, a table not yet analysed was
# scanned whole: 3x the server's CPU per row).
RECORD_PG = (
    "UPDATE deliveries AS d SET state = v.state, last_code = v.code, last_text = v.text, "
    "provider_id = v.provider, next_attempt_at = v.next, sent_at = v.sent, "
    "claimed_by = NULL, updated_at = %s FROM json_to_recordset(%s::json) "
    "AS v(id int, state text, code int, text text, provider text, next timestamptz, "
    "sent timestamptz) WHERE d.id = ANY(%s::int[]) AND d.id = v.id")
MARK_SENDING_PG = (
    "UPDATE deliveries AS d SET state = 'sending', attempts = v.att, "
    "first_attempt_at = v.first, updated_at = %s "
    "FROM json_to_recordset(%s::json) AS v(id int, att int, first timestamptz) "
    "WHERE d.id = ANY(%s::int[]) AND d.id = v.id AND d.state = 'claimed' AND d.claimed_by = %s")
CLAIM_PG = (
    "UPDATE deliveries AS d SET state = 'claimed', claimed_by = %s, message_id = v.mid, "
    "updated_at = %s FROM json_to_recordset(%s::json) AS v(id int, mid text) "
    "WHERE d.id = ANY(%s::int[]) AND d.id = v.id")
CLAIM = BatchStatement(
    "UPDATE deliveries SET state = 'claimed', claimed_by = :b_owner, message_id = :b_mid, "
    "updated_at = :b_now WHERE id = :b_id")
SKIP = sql(
    "UPDATE deliveries SET state = 'skipped', last_text = 'suppressed at send time', "
    "claimed_by = NULL, updated_at = :b_now WHERE id = :b_id", "b_now")
RELEASE = sql(
    "UPDATE deliveries SET state = 'pending', claimed_by = NULL, attempts = :b_att, "
    "last_text = :b_text, updated_at = :b_now WHERE id = :b_id", "b_now")
RELEASE_DEAD = sql(
    "UPDATE deliveries SET state = 'pending', claimed_by = NULL, last_text = :b_text, "
    "updated_at = :b_now WHERE id = :b_id AND state = 'claimed'", "b_now")
