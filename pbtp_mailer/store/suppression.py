"""Who must not be mailed: list-level unsubscribes and address-level suppressions.

Two places hold "do not send": ``memberships.status = 'unsubscribed'`` for one
list, and a ``suppressions`` row (bounced, complained, or unsubscribed from
all lists) for the address everywhere. Both checks are primary-key or
unique-index lookups, because the dispatcher asks again right before each
send. A suppression is never downgraded: complained > bounced >
unsubscribed; ``unsuppress`` lifts a bounce or complaint made in error (the
memberships were never touched, so the address is a subscriber again).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, bindparam, literal, select, union_all, update

from pbtp_mailer.errors import Problem, StoreError
from pbtp_mailer.store.csvfile import read_table
from pbtp_mailer.store.db import bulk_insert, in_chunk_size, key_in
from pbtp_mailer.store.schema import (
    SUPPRESSION_REASONS,
    lists,
    memberships,
    status_history,
    subscribers,
    suppressions,
)
from pbtp_mailer.store.subscribers import (
    InvalidAddress,
    email_key,
    ensure_subscriber,
    normalize_email,
    record_history,
)

__all__ = [
    "suppress",
    "unsuppress",
    "LIFTABLE",
    "is_suppressed",
    "suppressed_among",
    "SuppressReport",
    "import_suppressions",
]

RANK = {"unsubscribed": 1, "bounced": 2, "complained": 3}  # never downgraded
_RANK = RANK
#: suppressions a person may lift; an unsubscribe is the subscriber's own wish
LIFTABLE = ("bounced", "complained")
_CHUNK = 500


def _check_reason(reason: str) -> None:
    if reason not in SUPPRESSION_REASONS:
        raise StoreError(
            f"unknown suppression reason {reason!r} (known: {', '.join(SUPPRESSION_REASONS)})"
        )


def suppress(
    conn: Connection,
    email: str,
    reason: str,
    now: datetime,
    *,
    list_id: int | None = None,
    source: str = "",
    detail: str = "",
) -> bool:
    """Record a suppression; returns whether anything changed (it is idempotent).

    ``reason='unsubscribed'`` with a ``list_id`` is a list-level unsubscribe;
    everything else applies to the address on all lists.
    """
    _check_reason(reason)
    key = email_key(email)
    list_name = None
    if list_id is not None:
        list_name = conn.execute(
            select(lists.c.name).where(lists.c.id == list_id)
        ).scalar_one_or_none()
        if list_name is None:
            raise StoreError(f"unknown list id {list_id}")
    if reason == "unsubscribed" and list_id is not None:
        changed = _unsubscribe_from_list(conn, email, key, list_id, now)
    else:
        current = conn.execute(
            select(suppressions.c.reason).where(suppressions.c.email_key == key)
        ).scalar_one_or_none()
        changed = current is None or _RANK[reason] > _RANK[current]
        if current is None:
            conn.execute(suppressions.insert().values(
                email_key=key, reason=reason, source=source, created_at=now))
        elif changed:
            conn.execute(
                update(suppressions)
                .where(suppressions.c.email_key == key)
                .values(reason=reason, source=source, created_at=now)
            )
    if changed:
        record_history(conn, [dict(
            email_key=key, list_name=list_name,
            status=reason if list_id is not None or reason != "unsubscribed"
            else "unsubscribed-all",
            source=source, detail=detail, changed_at=now,
        )])
    return changed


def unsuppress(conn: Connection, email: str, now: datetime, *, detail: str,
               source: str = "cli") -> str:
    """Lift the address-level bounce or complaint of ``email``; returns the reason lifted.

    Recorded in ``status_history`` (status ``unsuppressed``, ``detail`` says
    why). An address unsubscribed from all lists stays so: that was their wish.
    """
    key = email_key(email)
    current = conn.execute(
        select(suppressions.c.reason).where(suppressions.c.email_key == key)
    ).scalar_one_or_none()
    if current is None:
        raise StoreError(f"{email} is not suppressed")
    if current not in LIFTABLE:
        raise StoreError(f"{email} unsubscribed from all lists; only a bounce or complaint "
                         "can be removed",
                         hint="they can subscribe again themselves")
    conn.execute(suppressions.delete().where(suppressions.c.email_key == key))
    record_history(conn, [dict(email_key=key, list_name=None, status="unsuppressed",
                               source=source, detail=f"{current} removed: {detail}",
                               changed_at=now)])
    return str(current)


def _unsubscribe_from_list(conn: Connection, email: str, key: str, list_id: int,
                           now: datetime) -> bool:
    sid = conn.execute(
        select(subscribers.c.id).where(subscribers.c.email_key == key)
    ).scalar_one_or_none()
    if sid is None:
        try:
            email, key = normalize_email(email)
        except InvalidAddress as exc:
            raise StoreError(str(exc)) from None
        sid = ensure_subscriber(conn, email, key, now)
    status = conn.execute(
        select(memberships.c.status).where(
            memberships.c.subscriber_id == sid, memberships.c.list_id == list_id
        )
    ).scalar_one_or_none()
    if status == "unsubscribed":
        return False
    if status is None:
        # Not a member (yet): remember the wish so an import cannot add them.
        conn.execute(memberships.insert().values(
            subscriber_id=sid, list_id=list_id, status="unsubscribed", changed_at=now))
    else:
        conn.execute(
            update(memberships)
            .where(memberships.c.subscriber_id == sid, memberships.c.list_id == list_id)
            .values(status="unsubscribed", changed_at=now)
        )
    return True


# Built once (the dispatcher calls this per message): one round trip, two index
# lookups (suppressions PK; subscribers.email_key unique + memberships PK).
_IS_SUPPRESSED = union_all(
    select(literal(1)).where(suppressions.c.email_key == bindparam("k")),
    select(literal(1))
    .select_from(memberships.join(subscribers, subscribers.c.id == memberships.c.subscriber_id))
    .where(subscribers.c.email_key == bindparam("k"), memberships.c.list_id == bindparam("l"),
           memberships.c.status == "unsubscribed"),
).limit(1)


def is_suppressed(conn: Connection, email: str, list_id: int) -> bool:
    """Unsubscribed from this list or from all, bounced or complained."""
    return conn.execute(_IS_SUPPRESSED, {"k": email_key(email), "l": list_id}).first() is not None


def suppressed_among(conn: Connection, emails: Sequence[str], list_id: int) -> set[str]:
    """The members of ``emails`` (as given) that ``is_suppressed`` would refuse."""
    by_key: dict[str, list[str]] = {}
    for e in emails:
        by_key.setdefault(email_key(e), []).append(e)
    keys = list(by_key)
    if conn.dialect.name == "sqlite":  # once per reservation of hundreds: on the driver
        hit = _suppressed_keys_sqlite(conn, keys, list_id)
    else:
        hit = _suppressed_keys(conn, keys, list_id)
    return {e for k in hit for e in by_key.get(k, ())}


def _suppressed_keys(conn: Connection, keys: list[str], list_id: int) -> set[str]:
    hit: set[str] = set()
    for i in range(0, len(keys), _CHUNK):
        chunk = keys[i:i + _CHUNK]
        hit.update(conn.execute(
            select(suppressions.c.email_key).where(key_in(conn, suppressions.c.email_key, chunk))
        ).scalars())
        hit.update(conn.execute(
            select(subscribers.c.email_key)
            .join(memberships, subscribers.c.id == memberships.c.subscriber_id)
            .where(
                key_in(conn, subscribers.c.email_key, chunk),
                memberships.c.list_id == list_id,
                memberships.c.status == "unsubscribed",
            )
        ).scalars())
    return hit


# the two questions of suppressed_among in one statement (SQLite's driver: ? marks)
_SUPPRESSED_SQL = (
    "SELECT email_key FROM suppressions WHERE email_key IN ({marks}) UNION "
    "SELECT s.email_key FROM subscribers s JOIN memberships m ON s.id = m.subscriber_id "
    "WHERE s.email_key IN ({marks}) AND m.list_id = ? AND m.status = 'unsubscribed'")
_SQLITE_CHUNK = 400  # twice that many parameters, under SQLite's oldest limit (999)


def _suppressed_keys_sqlite(conn: Connection, keys: list[str], list_id: int) -> set[str]:
    """``suppressed_among``'s keys on the sqlite3 driver: SQLAlchemy's building of two
    ``IN`` queries of hundreds of values cost more than running them."""
    raw = conn.connection.driver_connection
    assert raw is not None
    hit: set[str] = set()
    for i in range(0, len(keys), _SQLITE_CHUNK):
        chunk = keys[i:i + _SQLITE_CHUNK]
        marks = ", ".join("?" * len(chunk))
        hit.update(r[0] for r in raw.execute(_SUPPRESSED_SQL.format(marks=marks),
                                             (*chunk, *chunk, list_id)))
    return hit


@dataclass
class SuppressReport:
    file: str
    reason: str
    rows: int = 0
    added: int = 0
    unchanged: int = 0
    rejected: list[Problem] = field(default_factory=list)


_EMAIL_COLUMNS = ("email", "email address", "email_address", "e-mail", "address", "recipient")


def import_suppressions(conn: Connection, path: Path, reason: str, now: datetime,
                        *, display: str | None = None) -> SuppressReport:
    """Suppress every valid address of a provider export (CSV, or one address a line)."""
    _check_reason(reason)
    name = display or str(path)
    table = read_table(path, display=name)
    col = None
    header_is_data = False
    lowered = [h.strip().lower() for h in table.header]
    for cand in _EMAIL_COLUMNS:
        if cand in lowered:
            col = lowered.index(cand)
            break
    if col is None:
        if any("@" in h for h in table.header):
            col = next(i for i, h in enumerate(table.header) if "@" in h)
            header_is_data = True
        else:
            table.fail(1, f"no e-mail column (found: {', '.join(table.header)}); "
                          f"name it one of: {', '.join(_EMAIL_COLUMNS)}")
    report = SuppressReport(file=name, reason=reason)
    rows = table.rows
    if header_is_data:
        rows = [(1, table.header), *rows]
    keys: dict[str, str] = {}  # key -> first spelling; duplicates count once
    for line, cells in rows:
        raw = cells[col] if col < len(cells) else ""
        if not raw.strip():
            continue
        report.rows += 1
        try:
            email, key = normalize_email(raw)
        except InvalidAddress as exc:
            report.rejected.append(Problem(name, line, None, "", str(exc)))
            continue
        keys.setdefault(key, email)
    _apply_bulk(conn, keys, reason, now, name, report)
    return report


def _apply_bulk(conn: Connection, keys: dict[str, str], reason: str, now: datetime,
                name: str, report: SuppressReport) -> None:
    """Insert new suppressions and upgrade weaker ones, in bulk (100k rows in seconds)."""
    current: dict[str, str] = {}
    ordered = list(keys)
    size = in_chunk_size(conn)
    for i in range(0, len(ordered), size):
        for r in conn.execute(
            select(suppressions.c.email_key, suppressions.c.reason)
            .where(key_in(conn, suppressions.c.email_key, ordered[i:i + size]))
        ):
            current[r.email_key] = r.reason
    new = [k for k in ordered if k not in current]
    stronger = [k for k in ordered if k in current and _RANK[reason] > _RANK[current[k]]]
    report.added = len(new) + len(stronger)
    report.unchanged = len(ordered) - report.added
    bulk_insert(conn, suppressions, [
        dict(email_key=k, reason=reason, source="suppress-import", created_at=now) for k in new
    ], ignore_conflict=["email_key"])
    if stronger:
        conn.execute(
            update(suppressions)
            .where(suppressions.c.email_key == bindparam("b_key"))
            .values(reason=reason, source="suppress-import", created_at=now),
            [{"b_key": k} for k in stronger],
        )
    status = "unsubscribed-all" if reason == "unsubscribed" else reason
    bulk_insert(conn, status_history, [
        dict(email_key=k, list_name=None, status=status, source="suppress-import",
             detail=name, changed_at=now) for k in (*new, *stronger)
    ])
