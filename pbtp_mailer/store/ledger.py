"""The delivery ledger: who got which issue, when, with which Message-ID.

The only door to dispatch state (``Store.ledger(clock)`` hands it out): the
dispatcher's narrow calls, the questions ``status``, ``schedule`` and
``archive`` ask, and cron's note of when an issue came due. Rows are
claimed atomically (SQLite: ``BEGIN IMMEDIATE``, one writer; PostgreSQL:
``FOR UPDATE SKIP LOCKED``), so two dispatchers on one issue never take the
same row. A row is ``sending`` only while its message is on the wire:
recording one batch's results and claiming the next happen in one
transaction, so after a crash at most one batch (the sender's concurrency)
is left ambiguous.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, DateTime, bindparam, func, inspect, literal, select, update
from sqlalchemy.exc import SQLAlchemyError

from pbtp_mailer.errors import ContentChangedError, StoreError
from pbtp_mailer.store import ledger_sql, rate_usage, schedule_seen, suppression
from pbtp_mailer.store import runners as runners_mod
from pbtp_mailer.store.db import hot_transaction, insert_ignore, write_transaction
from pbtp_mailer.store.feedback import record_smtp_failures
from pbtp_mailer.store.ledger_questions import LedgerQuestions
from pbtp_mailer.store.ledger_schema import deliveries, dispatches
from pbtp_mailer.store.ledger_types import (
    Claimed,
    Decision,
    DispatchInfo,
    PauseReason,
    Reservation,
    content_hash,
)
from pbtp_mailer.store.runners import new_owner
from pbtp_mailer.store.schema import memberships, subscribers, suppressions
from pbtp_mailer.store.subscribers import MailingList
from pbtp_mailer.store.timestamps import aware

if TYPE_CHECKING:
    from pbtp_mailer.store.ratebucket import SharedRateLimit
    from pbtp_mailer.store.workers import WorkerRegistry

__all__ = ["Ledger", "DispatchInfo", "Claimed", "Decision", "PauseReason", "Reservation",
           "content_hash", "new_owner"]

HEARTBEAT_SECONDS = 5.0

class Ledger(LedgerQuestions):
    def __init__(self, engine: Any, *, clock: Callable[[], dt.datetime],
                 message_id_domain: str) -> None:
        self.engine = engine
        self.clock = clock
        self.domain = message_id_domain
        self._last_beat: dt.datetime | None = None
        #: newest status_history id when rows were reserved (newer: re-check suppression)
        self._history_mark: int | None = None

    # -- dispatches -------------------------------------------------------

    def find(self, issue_id: str, list_name: str | None = None) -> list[DispatchInfo]:
        q = select(dispatches).where(dispatches.c.issue_id == issue_id)
        if list_name is not None:
            q = q.where(dispatches.c.list_name == list_name)
        with self.engine.connect() as conn:
            return [self._info(r) for r in conn.execute(q.order_by(dispatches.c.id))]

    @staticmethod
    def _info(r: Any) -> DispatchInfo:
        d = dict(r._mapping)
        for key in ("created_at", "updated_at", "finished_at"):
            d[key] = aware(d[key])
        d["pause_reason"] = PauseReason(d["pause_reason"]) if d.get("pause_reason") else None
        d.pop("headers_hash", None)  # compared in open_dispatch only
        return DispatchInfo(**d)

    def open_dispatch(self, *, issue_id: str, ml: MailingList, issue_file: str, sender: str,
                      subject: str, preheader: str, language: str, text: str, html: str,
                      accept_changes: bool, headers: str = "") -> DispatchInfo:
        """The dispatch of this issue to this list: created, or resumed with the same content.

        Content differing from what the dispatch froze is refused unless
        ``accept_changes``: then the remaining recipients get the new content.
        ``headers`` (From, Reply-To, List-Id, one per line) are frozen the same
        way: a config change of who the issue comes from is a content change.
        """
        digest = content_hash(subject, text, html)
        headers_digest = content_hash(headers, "", "")
        now = self.clock()
        with write_transaction(self.engine) as conn:
            if conn.dialect.name == "postgresql":  # SQLite: BEGIN IMMEDIATE serialises already
                key = zlib.crc32(f"pbtp_mailer.dispatch:{issue_id}:{ml.name}".encode())
                conn.execute(ledger_sql.ADVISORY_LOCK, {"k": key})
            row = conn.execute(select(dispatches).where(
                dispatches.c.issue_id == issue_id, dispatches.c.list_name == ml.name)).first()
            if row is None:
                conn.execute(dispatches.insert().values(
                    issue_id=issue_id, list_id=ml.id, list_name=ml.name, issue_file=issue_file,
                    sender=sender, content_hash=digest, subject=subject, preheader=preheader,
                    language=language, frozen_text=text, frozen_html=html, state="running",
                    note="", created_at=now, updated_at=now, finished_at=None,
                    headers_hash=headers_digest))
            elif row.headers_hash not in (None, headers_digest) and not accept_changes:
                raise ContentChangedError(
                    f"{issue_file}: From, Reply-To or List-Id changed in the config since the "
                    f"dispatch of issue {issue_id} to list '{ml.name}' started",
                    hint="put the earlier values back to finish with them; to send the "
                         "remaining recipients with the new ones, run again with --accept-changes")
            elif row.content_hash != digest:
                sent = conn.execute(select(func.count()).where(
                    deliveries.c.dispatch_id == row.id, deliveries.c.state == "sent")).scalar_one()
                if not accept_changes:
                    raise ContentChangedError(
                        f"{issue_file}: issue {issue_id} changed since its dispatch to list "
                        f"'{ml.name}' started ({sent} already sent with the earlier content)",
                        hint="review the change; to send the corrected content to the "
                             "remaining recipients, run again with --accept-changes")
                conn.execute(dispatches.update().where(dispatches.c.id == row.id).values(
                    content_hash=digest, subject=subject, preheader=preheader, language=language,
                    frozen_text=text, frozen_html=html, updated_at=now, issue_file=issue_file,
                    headers_hash=headers_digest,
                    note=f"content changed after {sent} sent; remaining got the new content"))
            else:
                conn.execute(dispatches.update().where(dispatches.c.id == row.id).values(
                    updated_at=now, sender=sender, issue_file=issue_file,
                    headers_hash=headers_digest))
        return self.find(issue_id, ml.name)[0]

    def set_state(self, dispatch_id: int, state: str, note: str | None = None) -> None:
        """``running`` or ``done`` (which clears any pause reason); see ``pause``."""
        now = self.clock()
        values: dict[str, Any] = {"state": state, "updated_at": now, "pause_reason": None}
        if note is not None:
            values["note"] = note
        where = [dispatches.c.id == dispatch_id]
        if state == "done":  # finished when it first became done, not at every re-run
            values["finished_at"] = now
            where.append(dispatches.c.state != "done")
        with write_transaction(self.engine) as conn:
            conn.execute(dispatches.update().where(*where).values(**values))

    def pause(self, dispatch_id: int, reason: PauseReason, note: str) -> None:
        """Mark the dispatch paused: ``reason`` for programs, ``note`` for people."""
        with write_transaction(self.engine) as conn:
            conn.execute(dispatches.update().where(dispatches.c.id == dispatch_id).values(
                state="paused", pause_reason=reason.value, note=note, updated_at=self.clock()))

    def running(self) -> list[DispatchInfo]:
        """Every dispatch in state ``running``, oldest first (cron's retries)."""
        with self.engine.connect() as conn:
            return [self._info(r) for r in conn.execute(
                select(dispatches).where(dispatches.c.state == "running")
                .order_by(dispatches.c.id))]

    def exists(self) -> bool:
        """Whether this database has the ledger's tables (an unmigrated one has not)."""
        with self.engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
        return {"dispatches", "deliveries"} <= names

    def first_sent(self, issue_ids: Iterable[str]) -> dict[str, dt.datetime]:
        """When each issue's first dispatch with a ``sent`` delivery was created (an empty
        answer from a database without the ledger's tables: nothing was sent there)."""
        wanted = list(issue_ids)
        try:
            if not wanted or not self.exists():
                return {}
            return self._first_sent(wanted)
        except SQLAlchemyError as exc:
            raise StoreError(f"reading the ledger failed: {getattr(exc, 'orig', None) or exc}"
                             ) from None

    def _first_sent(self, wanted: list[str]) -> dict[str, dt.datetime]:
        q = (select(dispatches.c.issue_id, func.min(dispatches.c.created_at))
             .where(dispatches.c.issue_id.in_(wanted),
                    select(deliveries.c.id).where(deliveries.c.dispatch_id == dispatches.c.id,
                                                  deliveries.c.state == "sent").exists())
             .group_by(dispatches.c.issue_id))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return {issue_id: when.replace(tzinfo=when.tzinfo or dt.UTC)
                for issue_id, when in rows if when is not None}

    # -- cron's record of due issues -------------------------------------------

    def first_seen_due(self, issue_id: str, send_at: dt.datetime) -> dt.datetime | None:
        """When cron first saw this issue due at ``send_at`` (None: not yet, or it moved)."""
        with self.engine.connect() as conn:
            return schedule_seen.first_seen(conn, issue_id, send_at)

    def note_due(self, issue_id: str, send_at: dt.datetime,
                 now: dt.datetime) -> tuple[dt.datetime, bool]:
        """Record that cron saw the issue due: (first seen, whether ``send_at`` moved)."""
        with write_transaction(self.engine) as conn:
            return schedule_seen.note_due(conn, issue_id, send_at, now)

    # -- recipients -------------------------------------------------------

    def enqueue(self, dispatch: DispatchInfo, list_id: int) -> int:
        """Add a pending row for every current subscriber of the list not yet in the
        ledger for this issue (one INSERT ... SELECT; an address on two lists once)."""
        now = self.clock()
        stamp = literal(now, DateTime(timezone=True))
        current = (
            select(literal(dispatch.id), literal(dispatch.issue_id), subscribers.c.id,
                   memberships.c.list_id, subscribers.c.email, subscribers.c.email_key,
                   literal("pending"), literal(0), stamp, stamp)
            .select_from(memberships.join(subscribers,
                                          subscribers.c.id == memberships.c.subscriber_id)
                         .outerjoin(suppressions,
                                    suppressions.c.email_key == subscribers.c.email_key))
            .where(memberships.c.list_id == list_id, memberships.c.status == "subscribed",
                   suppressions.c.email_key.is_(None))
        )
        columns = ["dispatch_id", "issue_id", "subscriber_id", "list_id", "email", "email_key",
                   "state", "attempts", "created_at", "updated_at"]
        with write_transaction(self.engine) as conn:
            stmt = insert_ignore(conn, deliveries, "issue_id", "email_key")
            # rowcount of INSERT ... SELECT is -1 with some drivers (psycopg): count instead
            count = select(func.count()).where(deliveries.c.dispatch_id == dispatch.id)
            before = conn.execute(count).scalar_one()
            conn.execute(stmt.from_select(columns, current))
            added = conn.execute(count).scalar_one() - before
            if added:
                conn.execute(dispatches.update().where(
                    dispatches.c.id == dispatch.id, dispatches.c.state == "done").values(
                    state="running", finished_at=None, updated_at=now))
        return int(added)

    # -- runners ----------------------------------------------------------

    def register(self, owner: str) -> None:
        runners_mod.register(self.engine, owner, self.clock())
        self._last_beat = self.clock()

    def unregister(self, owner: str) -> None:
        runners_mod.unregister(self.engine, owner)

    def _beat(self, conn: Connection, owner: str, now: dt.datetime) -> None:
        if self._last_beat is None or (now - self._last_beat).total_seconds() >= HEARTBEAT_SECONDS:
            runners_mod.beat(conn, owner, now)
            self._last_beat = now

    def live_owners(self) -> set[str]:
        return runners_mod.live_owners(self.engine, self.clock())

    # -- the fleet (store/workers.py, store/ratebucket.py) ---------------------

    def workers(self, owner: str | None = None) -> WorkerRegistry:
        """The worker registry on this database (``owner``: this process, if it registers)."""
        from pbtp_mailer.store.workers import WorkerRegistry

        return WorkerRegistry(self.engine, owner, clock=self.clock)

    def shared_rate(self, sender: str, **options: Any) -> SharedRateLimit:
        """``sender``'s rate and quotas, shared by every worker (options: ``SharedRateLimit``)."""
        from pbtp_mailer.store.ratebucket import SharedRateLimit

        return SharedRateLimit(self.engine, sender, now=self.clock, **options)

    # -- the hot loop -------------------------------------------------------
    #
    # reserve():    take up to K due rows as 'claimed' (not on the wire yet, so a
    #               crash leaves them safe: the next run puts them back to pending);
    #               suppression is checked here, just before sending.
    # begin_send(): one transaction recording the previous batch's decisions and
    #               marking the next batch 'sending' (at most `concurrency` rows).

    def reserve(self, dispatch: DispatchInfo, owner: str, n: int, *, list_id: int,
                decisions: Sequence[Decision] = ()) -> Reservation:
        now = self.clock()
        with hot_transaction(self.engine) as conn:
            if decisions:
                self._record(conn, decisions, now)
            self._beat(conn, owner, now)
            return self._reserve(conn, dispatch, owner, n, list_id, now)

    def begin_send(self, owner: str, batch: Sequence[Claimed], decisions: Sequence[Decision], *,
                   list_id: int, rate_windows: dict[str, int] | None = None,
                   sender_name: str = "") -> list[Claimed]:
        """Record decisions and mark ``batch`` 'sending'; returns the batch minus addresses
        suppressed since they were reserved (those become 'skipped')."""
        now = self.clock()
        with hot_transaction(self.engine) as conn:
            if decisions:
                self._record(conn, decisions, now)
            # any unsubscribe/bounce since the rows were reserved: check this batch again
            if batch and ledger_sql.history_mark(conn) != self._history_mark:
                gone = suppression.suppressed_among(conn, [c.email for c in batch], list_id)
                if gone:
                    conn.execute(ledger_sql.SKIP, [{"b_id": c.id, "b_now": now} for c in batch
                                         if c.email in gone])
                    batch = [c for c in batch if c.email not in gone]
            if batch:
                marked = ledger_sql.mark_sending(conn, owner, list(batch), now)
                if len(marked) != len(batch):  # claims another worker took over: not ours
                    batch = [c for c in batch if c.id in marked]
            if rate_windows and batch:
                rate_usage.count_usage(conn, sender_name, rate_windows, len(batch), now)
            self._beat(conn, owner, now)
        return list(batch)

    def finish(self, decisions: Sequence[Decision]) -> None:
        if decisions:
            now = self.clock()
            with hot_transaction(self.engine) as conn:
                self._record(conn, decisions, now)

    def _record(self, conn: Connection, decisions: Sequence[Decision], now: dt.datetime) -> None:
        ledger_sql.record(conn, decisions, now)
        if not any(o.suppress_as for o in decisions):  # the usual batch: sent or deferred
            return
        for o in decisions:
            if o.suppress_as and o.email:
                suppression.suppress(conn, o.email, o.suppress_as, now, source="dispatch")
        record_smtp_failures(conn, decisions, now)  # the feedback loop's `smtp` events

    def usage(self, sender: str, windows: Iterable[str]) -> dict[str, int]:
        """Messages ``sender`` sent in each current window (minute/hour/day)."""
        with self.engine.connect() as conn:
            return rate_usage.usage(conn, sender, windows, self.clock())

    def _reserve(self, conn: Connection, dispatch: DispatchInfo, owner: str, n: int,
                 list_id: int, now: dt.datetime) -> Reservation:
        result = Reservation()
        if n <= 0:
            return result
        self._history_mark = ledger_sql.history_mark(conn)
        rows = ledger_sql.reserve_rows(conn, dispatch.id, now, n)
        if not rows:
            return result
        suppressed = suppression.suppressed_among(conn, [r.email for r in rows], list_id)
        if suppressed:
            skip = [{"b_id": r.id, "b_now": now} for r in rows if r.email in suppressed]
            conn.execute(ledger_sql.SKIP, skip)
            result.skipped = len(skip)
            rows = [r for r in rows if r.email not in suppressed]
        # 48 random bits per Message-ID, as secrets.token_hex(6) gave, in one system call
        noise = os.urandom(6 * len(rows)).hex()
        claims = []
        for i, r in enumerate(rows):
            mid = r.message_id or \
                f"<{dispatch.issue_id}.{r.id}.{noise[12 * i:12 * i + 12]}@{self.domain}>"
            result.claimed.append(Claimed(
                r.id, r.subscriber_id, r.list_id, r.email, r.name, _attrs(r.attrs), mid,
                r.attempts + 1, aware(r.first_attempt_at) or now))
            claims.append((mid, r.id))
        if claims:
            ledger_sql.claim(conn, owner, claims, now)
        return result

    def release(self, claimed: Sequence[Claimed], text: str) -> None:
        """Put claimed rows back to pending: never sent (a stop, or the batch was refused)."""
        if not claimed:
            return
        now = self.clock()
        with write_transaction(self.engine) as conn:
            conn.execute(ledger_sql.RELEASE, [{"b_id": c.id, "b_att": c.attempts - 1,
                                     "b_text": text[:2000], "b_now": now} for c in claimed])

    def release_dead_claims(self, dispatch_id: int) -> int:
        """Rows a stopped run had claimed but not begun sending: safe to send again."""
        live = self.live_owners()
        now = self.clock()
        with write_transaction(self.engine) as conn:
            rows = conn.execute(select(deliveries.c.id, deliveries.c.claimed_by).where(
                deliveries.c.dispatch_id == dispatch_id,
                deliveries.c.state == "claimed")).all()
            dead = [{"b_id": r.id, "b_text": "released: the run that claimed it stopped",
                     "b_now": now} for r in rows if r.claimed_by not in live]
            if dead:
                conn.execute(ledger_sql.RELEASE_DEAD, dead)
        return len(dead)

    # -- questions -----------------------------------------------------------

    def ambiguous(self, dispatch_id: int) -> list[Any]:
        """Rows left ``sending`` by a dispatcher that is gone: delivered or not, unknown."""
        live = self.live_owners()
        with self.engine.connect() as conn:
            rows = conn.execute(select(deliveries).where(
                deliveries.c.dispatch_id == dispatch_id, deliveries.c.state == "sending")
                .order_by(deliveries.c.id)).all()
        return [r for r in rows if r.claimed_by not in live]

    def requeue_unknown(self, dispatch_id: int) -> int:
        """Send ambiguous rows again (``--resend-unknown``), keeping their Message-ID."""
        rows = self.ambiguous(dispatch_id)
        if not rows:
            return 0
        now = self.clock()
        with write_transaction(self.engine) as conn:
            conn.execute(update(deliveries).where(
                deliveries.c.id == bindparam("b_id"), deliveries.c.state == "sending",
                deliveries.c.claimed_by == bindparam("b_owner")).values(
                state="pending", claimed_by=None, updated_at=now,
                last_text="requeued by --resend-unknown after an interrupted run"),
                [{"b_id": r.id, "b_owner": r.claimed_by} for r in rows])
        return len(rows)

    def requeue_rejected(self, dispatch_id: int) -> int:
        """Rows whose message the server refused go back to pending: a person's new run
        (after fixing the issue) tries them again, with their Message-ID."""
        now = self.clock()
        with write_transaction(self.engine) as conn:
            done = conn.execute(update(deliveries).where(
                deliveries.c.dispatch_id == dispatch_id, deliveries.c.state == "rejected")
                .values(state="pending", claimed_by=None, updated_at=now))
        return int(done.rowcount or 0)


def _attrs(value: Any) -> Mapping[str, str]:
    """A subscriber's attributes as text (most have none: no JSON to parse then). Lists
    repeat the same few attribute sets (an institution, a role): the same stored JSON is
    parsed once, and its rows share one read-only mapping."""
    if not value or value == "{}":
        return _NO_ATTRS
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    parsed = _PARSED_ATTRS.get(value)
    if parsed is None:
        parsed = MappingProxyType({str(k): str(v) for k, v in json.loads(value).items()})
        if len(_PARSED_ATTRS) >= 4096:
            _PARSED_ATTRS.clear()
        _PARSED_ATTRS[value] = parsed
    return parsed


_NO_ATTRS: Mapping[str, str] = MappingProxyType({})
#: stored attribute JSON -> its parsed, read-only mapping (bounded)
_PARSED_ATTRS: dict[str, Mapping[str, str]] = {}
