"""CSV import into a list, and export of a list with each member's status.

Import is two phases. First every row is checked in Python (address syntax
with email-validator, no DNS; CR/LF; duplicates by lower-cased address), so
each rejected row is reported as ``FILE:LINE: reason``. Then the good rows
are applied in one transaction with bulk ``executemany`` statements: new
subscribers, profile updates, new memberships and their history rows.

An import never resubscribes: an address that unsubscribed from the list,
or is suppressed (bounced, complained, unsubscribed from all), or was erased
on request (``subscribers erase``), is reported as skipped. Each new member
gets a consent record naming the file. Re-importing the same file changes nothing. ``strict`` turns
any rejected row into a refusal of the whole file; ``dry_run`` does the
work and rolls it back, so its counts are exact.

Columns: ``email`` (required), ``name``, and any others, kept as attributes
(keys lower-cased, non-alphanumerics turned into ``_``) for layouts. The
``status`` and ``changed_at`` columns that ``export`` writes are ignored on
import, so an export can be imported elsewhere.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import bindparam, select, update

from pbtp_mailer.errors import ImportFileError, Problem
from pbtp_mailer.store.csvfile import read_table
from pbtp_mailer.store.db import bulk_insert, in_chunk_size, key_in
from pbtp_mailer.store.erasure import erased_among
from pbtp_mailer.store.schema import memberships, status_history, subscribers, suppressions
from pbtp_mailer.store.subscribe_schema import consent_records
from pbtp_mailer.store.subscribers import (
    InvalidAddress,
    check_sendable,
    check_text,
    normalize_email,
)

if TYPE_CHECKING:
    from pbtp_mailer.store import Store

__all__ = ["ImportReport", "SkippedRow", "import_csv", "export_csv", "attribute_key"]

IGNORED_COLUMNS = ("status", "changed_at")


@dataclass(frozen=True)
class SkippedRow:
    line: int
    email: str
    reason: str


@dataclass
class ImportReport:
    file: str
    list_name: str
    dry_run: bool = False
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[SkippedRow] = field(default_factory=list)
    rejected: list[Problem] = field(default_factory=list)


@dataclass
class _Row:
    line: int
    email: str
    key: str
    name: str | None
    attrs: dict[str, str]


def attribute_key(header: str) -> str:
    return re.sub(r"[^0-9a-z_]+", "_", header.strip().lower()).strip("_")


def _columns(table: Any) -> tuple[int, int | None, dict[int, str]]:
    """(email column, name column, {column: attribute key}) from the header."""
    header = list(table.header)
    while header and not header[-1]:
        header.pop()  # Excel's trailing empty columns
    keys: dict[str, int] = {}
    for i, h in enumerate(header):
        key = attribute_key(h)
        if not key:
            table.fail(table.header_line, f"column {i + 1} has no name")
        if key in keys:
            table.fail(table.header_line, f"column {h!r} appears twice")
        keys[key] = i
    if "email" not in keys:
        table.fail(table.header_line,
                   f"no 'email' column (found: {', '.join(h for h in header if h)})")
    attrs = {i: k for k, i in keys.items()
             if k not in ("email", "name") and k not in IGNORED_COLUMNS}
    return keys["email"], keys.get("name"), attrs


def _check_rows(table: Any, report: ImportReport) -> list[_Row]:
    email_col, name_col, attr_cols = _columns(table)
    width = len(table.header)
    seen: dict[str, int] = {}
    good: list[_Row] = []
    for line, cells in table.rows:
        report.rows += 1

        def reject(msg: str, line: int = line) -> None:
            report.rejected.append(Problem(table.name, line, None, "", msg))

        if len(cells) > width and any(c.strip() for c in cells[width:]):
            reject(f"{len(cells)} fields, but the header has {width}")
            continue
        cells = cells + [""] * (width - len(cells))
        try:
            email, key = normalize_email(cells[email_col])
            check_sendable(email)
            name = check_text(cells[name_col], "name") if name_col is not None else None
        except InvalidAddress as exc:
            reject(str(exc))
            continue
        if key in seen:
            reject(f"duplicate of line {seen[key]} ({email})")
            continue
        seen[key] = line
        attrs = {k: cells[i].strip() for i, k in attr_cols.items() if cells[i].strip()}
        good.append(_Row(line, email, key, name, attrs))
    return good


def _chunks(items: list[str], size: int) -> Any:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def import_csv(store: Store, list_name: str, path: Path, *, dry_run: bool = False,
               strict: bool = False, display: str | None = None) -> ImportReport:
    """Import ``path`` into ``list_name``; see the module docstring for the rules."""
    ml = store.get_list(list_name)
    table = read_table(path, display=display or str(path))
    report = ImportReport(file=table.name, list_name=ml.name, dry_run=dry_run)
    good = _check_rows(table, report)
    if strict and report.rejected:
        raise ImportFileError(report.rejected)
    now = store.clock()
    with store.engine.connect() as conn:
        conn.execution_options(immediate=True)
        trans = conn.begin()
        try:
            _apply(conn, ml, good, report, now)
        except BaseException:
            trans.rollback()
            raise
        if dry_run:
            trans.rollback()
        else:
            trans.commit()
    return report


def _known(conn: Any, ml: Any, keys: list[str], size: int
           ) -> tuple[dict[str, Any], dict[str, str], dict[int, str], set[str]]:
    """What the database knows of ``keys``: subscribers, suppressions, members, erasures."""
    existing: dict[str, Any] = {}
    suppressed: dict[str, str] = {}
    erased: set[str] = set()
    for chunk in _chunks(keys, size):
        for r in conn.execute(
            select(subscribers.c.id, subscribers.c.email_key, subscribers.c.name,
                   subscribers.c.attrs).where(key_in(conn, subscribers.c.email_key, chunk))
        ):
            existing[r.email_key] = r
        for r in conn.execute(
            select(suppressions.c.email_key, suppressions.c.reason)
            .where(key_in(conn, suppressions.c.email_key, chunk))
        ):
            suppressed[r.email_key] = r.reason
        erased.update(erased_among(conn, chunk))
    members = {sid: status for sid, status in conn.execute(
        select(memberships.c.subscriber_id, memberships.c.status)
        .where(memberships.c.list_id == ml.id)
    )}
    return existing, suppressed, members, erased


def _insert_new(conn: Any, new: list[_Row], existing: dict[str, Any], size: int,
                now: Any) -> None:
    """Insert the addresses never seen before and add their ids to ``existing``."""
    bulk_insert(conn, subscribers, [
        dict(email=r.email, email_key=r.key, name=r.name, attrs=r.attrs,
             created_at=now, updated_at=now) for r in new], ignore_conflict=["email_key"])
    for chunk in _chunks([r.key for r in new], size):
        for r in conn.execute(
            select(subscribers.c.id, subscribers.c.email_key)
            .where(key_in(conn, subscribers.c.email_key, chunk))
        ):
            existing[r.email_key] = r


def _apply(conn: Any, ml: Any, good: list[_Row], report: ImportReport, now: Any) -> None:
    size = in_chunk_size(conn)
    existing, suppressed, members, erased = _known(conn, ml, [r.key for r in good], size)
    if erased:  # a GDPR erasure: never added back by an old file
        for r in good:
            if r.key in erased:
                report.skipped.append(SkippedRow(r.line, r.email, "erased on request"))
        good = [r for r in good if r.key not in erased]
    new = [r for r in good if r.key not in existing]
    if new:
        _insert_new(conn, new, existing, size, now)
    new_keys = {r.key for r in new}

    changes = []
    new_members = []
    history = []
    consents: list[dict[str, Any]] = []
    for row in good:
        cur = existing[row.key]
        reason = suppressed.get(row.key)
        status = members.get(cur.id)
        if reason is not None:
            why = "unsubscribed from all lists" if reason == "unsubscribed" else reason
            report.skipped.append(SkippedRow(row.line, row.email, why))
            continue
        if status == "unsubscribed":
            report.skipped.append(SkippedRow(row.line, row.email,
                                             f"unsubscribed from {ml.name!r}"))
            continue
        changed = False
        if row.key not in new_keys:
            merged = {**(cur.attrs or {}), **row.attrs}
            name = row.name or cur.name
            if merged != (cur.attrs or {}) or name != cur.name:
                changes.append(dict(b_id=cur.id, b_name=name, b_attrs=merged))
                changed = True
        if status is None:
            new_members.append(dict(subscriber_id=cur.id, list_id=ml.id,
                                    status="subscribed", changed_at=now))
            history.append(dict(email_key=row.key, list_name=ml.name, status="subscribed",
                                source="import", detail=report.file, changed_at=now))
            consents.append(dict(email_key=row.key, list_name=ml.name, how="import",
                                 detail=report.file, requested_at=now, confirmed_at=now))
            report.added += 1
        elif changed:
            report.updated += 1
        else:
            report.unchanged += 1
    if changes:
        conn.execute(
            update(subscribers)
            .where(subscribers.c.id == bindparam("b_id"))
            .values(name=bindparam("b_name"), attrs=bindparam("b_attrs"), updated_at=now),
            changes,
        )
    if new_members:
        bulk_insert(conn, memberships, new_members, ignore_conflict=["subscriber_id", "list_id"])
    bulk_insert(conn, status_history, history)
    bulk_insert(conn, consent_records, consents)


def export_csv(store: Store, list_name: str, out: IO[str], *, batch_size: int = 5000,
               for_spreadsheet: bool = False) -> int:
    """Write every member of the list (any status) as CSV; return the number of rows.

    ``for_spreadsheet`` defuses CSV formula injection (OWASP): a name or attribute
    starting with ``= + - @`` (or a tab/CR) gets a leading apostrophe; so does an
    address (``=cmd|...@example.org`` is a valid one). Off by default, so that an
    export imports back unchanged.
    """
    cell = _spreadsheet_safe if for_spreadsheet else _plain
    ml = store.get_list(list_name)

    def batches() -> Any:
        last = 0
        for _ in range(10**9):  # bounded: ``last`` grows every pass
            q = (
                select(subscribers.c.id, subscribers.c.email, subscribers.c.name,
                       subscribers.c.attrs, memberships.c.status, memberships.c.changed_at,
                       suppressions.c.reason, suppressions.c.created_at)
                .join(memberships, memberships.c.subscriber_id == subscribers.c.id)
                .outerjoin(suppressions, suppressions.c.email_key == subscribers.c.email_key)
                .where(memberships.c.list_id == ml.id, subscribers.c.id > last)
                .order_by(subscribers.c.id)
                .limit(batch_size)
            )
            with store.engine.connect() as conn:
                rows = conn.execute(q).all()
            if rows:
                yield rows
            if len(rows) < batch_size:
                return
            last = rows[-1].id

    attr_keys: set[str] = set()
    for rows in batches():
        for r in rows:
            attr_keys.update((r.attrs or {}).keys())
    columns = sorted(attr_keys - {"email", "name", *IGNORED_COLUMNS})
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["email", "name", "status", "changed_at", *columns])
    count = 0
    for rows in batches():
        for r in rows:
            status, since = (r.reason, r.created_at) if r.reason else (r.status, r.changed_at)
            attrs = r.attrs or {}
            writer.writerow([cell(r.email), cell(r.name or ""), status, _iso(since),
                             *(cell(str(attrs.get(k, ""))) for k in columns)])
            count += 1
    return count


def _plain(value: str) -> str:
    return value


def _spreadsheet_safe(value: str) -> str:
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _iso(value: Any) -> str:
    text = value.isoformat(timespec="seconds") if value is not None else ""
    return text.replace("+00:00", "Z") if text.endswith("+00:00") else (
        text + "Z" if text and value.tzinfo is None else text)
