"""Store side of the feedback loop: the only door to ``feedback_events`` and ``feedback_nonces``.

``FeedbackLog.record`` takes events (anything with the attributes of
``feedback.FeedbackEvent``) and, for each one not yet recorded under its
(source, event_id), finds the ledger row it refers to, stores it and applies
the suppression the caller's rule asks for, all in one transaction: a
duplicate delivery of the same webhook or DSN changes nothing. The rule is
passed in (``feedback.Policy``) so the decision stays in the feature and the
SQL stays here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection, Engine, and_, bindparam, delete, func, select, update

from pbtp_mailer.store import suppression as _sup
from pbtp_mailer.store.db import bulk_insert, in_chunk_size, insert_ignore, key_in, write_transaction
from pbtp_mailer.store.feedback_report import IssueRows, issue_rows
from pbtp_mailer.store.feedback_schema import feedback_events, feedback_nonces
from pbtp_mailer.store.ledger_schema import deliveries, dispatches
from pbtp_mailer.store.schema import status_history, suppressions
from pbtp_mailer.store.subscribers import email_key

__all__ = ["FeedbackLog", "Recorded", "EventRow", "DispatchRates", "SuppressionRule", "IssueRows",
           "record_smtp_failures"]


class SuppressionRule(Protocol):
    @property
    def soft_window(self) -> int: ...

    def suppression_for(self, kind: str, soft_hits: int) -> str | None: ...


@dataclass(frozen=True)
class Recorded:
    event: Any
    new: bool
    email: str
    delivery_id: int | None
    dispatch_id: int | None
    suppressed_as: str | None


@dataclass(frozen=True)
class EventRow:
    id: int
    source: str
    event_id: str
    email: str
    kind: str
    status: str
    diagnostic: str
    delivery_id: int | None
    dispatch_id: int | None
    suppressed_as: str | None
    received_at: dt.datetime
    recorded_at: dt.datetime


class Rates:
    """Bounce and complaint rates, the one definition for ``status``, ``report``, the cron
    gate and ``doctor``: a mixin for classes with ``sent``, ``failed``, ``bounces`` (bounced
    addresses) and ``complaints``."""

    sent: int
    failed: int
    complaints: int
    if TYPE_CHECKING:  # a field in one class, a property (hard + soft) in another
        @property
        def bounces(self) -> int: ...

    @property
    def bounce_rate(self) -> float:
        """Bounced addresses of the copies tried (sent or refused at send time)."""
        tried = self.sent + self.failed
        return self.bounces / tried if tried else 0.0

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.sent if self.sent else 0.0


@dataclass(frozen=True)
class DispatchRates(Rates):
    dispatch_id: int
    sent: int
    hard: int  # distinct addresses
    soft: int
    complaints: int
    unsubscribes: int
    failed: int = 0  # copies refused for good at send time (their `smtp` events are in hard)

    @property
    def bounces(self) -> int:
        return self.hard + self.soft


# Statements built once: the per-event path runs them thousands of times a second.
_COLS = (deliveries.c.id, deliveries.c.email, deliveries.c.dispatch_id, deliveries.c.list_id)
_BY_ID = select(*_COLS).where(deliveries.c.id == bindparam("v"))
_BY_MESSAGE_ID = select(*_COLS).where(deliveries.c.message_id == bindparam("v")).limit(1)
_BY_PROVIDER_ID = select(*_COLS).where(deliveries.c.provider_id == bindparam("v")).limit(1)
_LATEST = (select(*_COLS).where(deliveries.c.email_key == bindparam("v"),
                                deliveries.c.state.in_(("sent", "failed")))
           .order_by(deliveries.c.id.desc()).limit(1))
_SEEN = select(feedback_events.c.source, feedback_events.c.event_id, feedback_events.c.email,
               feedback_events.c.delivery_id, feedback_events.c.dispatch_id).where(
    feedback_events.c.event_id.in_(bindparam("ids", expanding=True)))
_UPGRADE = (update(suppressions).where(suppressions.c.email_key == bindparam("k"))
            .values(reason=bindparam("r"), source=bindparam("s"), created_at=bindparam("t")))
_SET_SUPPRESSED = (update(feedback_events)
                   .where(feedback_events.c.source == bindparam("src"),
                          feedback_events.c.event_id == bindparam("eid"))
                   .values(suppressed_as=bindparam("reason")))


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _bare_message_id(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    return value if value.startswith("<") else f"<{value}>"


class FeedbackLog:
    def __init__(self, engine: Engine, *, clock: Callable[[], dt.datetime]) -> None:
        self.engine = engine
        self.clock = clock
        self._inserts: dict[str, Any] = {}
        self._pruned: dict[str, dt.datetime] = {}  # when old nonces were last dropped

    # -- recording ------------------------------------------------------------

    def record(self, events: Sequence[Any], rule: SuppressionRule, *,
               nonce: tuple[str, str, dt.timedelta] | None = None) -> list[Recorded] | None:
        """Record each event once and apply ``rule``; one transaction for the batch.

        With ``nonce=(source, token, max_age)`` the token is remembered in the
        same transaction, and a token seen before makes it a replay: nothing is
        written and the answer is None.
        """
        out: list[Recorded] = []
        if not events and nonce is None:
            return out
        now = self.clock()
        with write_transaction(self.engine) as conn:
            if nonce is not None and not self._remember(conn, *nonce, now):
                return None
            seen = self._seen(conn, events)
            wanted: list[tuple[int, str, str, str, str]] = []
            for ev in events:
                known = seen.get((ev.source, ev.event_id[:300]))
                if known is not None:
                    out.append(Recorded(ev, False, known[0], known[1], known[2], None))
                    continue
                rec, want = self._record_one(conn, ev, rule, now)
                if rec.new:  # the same event twice in one batch
                    seen[(ev.source, ev.event_id[:300])] = (rec.email, rec.delivery_id,
                                                            rec.dispatch_id)
                if want is not None:
                    wanted.append((len(out), rec.email, want, ev.source,
                                   f"{ev.kind} {ev.status}".strip()[:200]))
                out.append(rec)
            reasons = {w[0]: w[2] for w in wanted}
            for i in self._suppress_all(conn, wanted, now):
                out[i] = replace(out[i], suppressed_as=reasons[i])
        return out

    def _suppress_all(self, conn: Connection, wanted: list[tuple[int, str, str, str, str]],
                      now: dt.datetime) -> list[int]:
        """Address-level suppressions of a batch in bulk; the indexes that changed something.

        The same rules as ``suppression.suppress`` (never downgraded: complained >
        bounced > unsubscribed; a history row per change), in three statements
        instead of three per event.
        """
        if not wanted:
            return []
        keys = sorted({email_key(e) for _, e, _, _, _ in wanted})
        current: dict[str, str] = {}
        size = in_chunk_size(conn)
        for i in range(0, len(keys), size):
            for r in conn.execute(select(suppressions.c.email_key, suppressions.c.reason)
                                  .where(key_in(conn, suppressions.c.email_key,
                                                keys[i:i + size]))):
                current[r.email_key] = r.reason
        existed = set(current)
        rows: dict[str, dict[str, Any]] = {}
        history: list[dict[str, Any]] = []
        changed: list[int] = []
        for idx, email, reason, source, detail in wanted:
            k = email_key(email)
            if k in current and _sup.RANK[reason] <= _sup.RANK[current[k]]:
                continue
            current[k] = reason
            rows[k] = dict(email_key=k, reason=reason, source=source, created_at=now)
            history.append(dict(email_key=k, list_name=None, changed_at=now, source=source,
                                status="unsubscribed-all" if reason == "unsubscribed" else reason,
                                detail=detail))
            changed.append(idx)
        bulk_insert(conn, suppressions, [r for k, r in rows.items() if k not in existed],
                    ignore_conflict=["email_key"])
        upgrades = [r for k, r in rows.items() if k in existed]
        if upgrades:
            conn.execute(_UPGRADE, [{"k": r["email_key"], "r": r["reason"], "s": r["source"],
                                     "t": now} for r in upgrades])
        bulk_insert(conn, status_history, history)
        return changed

    def _seen(self, conn: Connection, events: Sequence[Any]) -> dict[tuple[str, str], Any]:
        """The batch's events already recorded: one query per 500 ids."""
        ids = sorted({ev.event_id[:300] for ev in events})
        found: dict[tuple[str, str], Any] = {}
        for i in range(0, len(ids), 500):
            for r in conn.execute(_SEEN, {"ids": ids[i:i + 500]}):
                found[(r.source, r.event_id)] = (r.email, r.delivery_id, r.dispatch_id)
        return found

    def _record_one(self, conn: Connection, ev: Any, rule: SuppressionRule,
                    now: dt.datetime) -> tuple[Recorded, str | None]:
        """Store one new event; returns it and the address-level suppression it asks for."""
        row = self._delivery(conn, ev)
        email = row.email if row is not None else ev.email
        if not email:  # a VERP-only bounce whose copy is gone from the ledger
            return Recorded(ev, False, "", None, None, None), None
        key = email_key(email)
        delivery_id = row.id if row is not None else None
        dispatch_id = row.dispatch_id if row is not None else None
        # the reason of every kind but 'soft' is known before the row exists
        reason = rule.suppression_for(ev.kind, 0) if ev.kind != "soft" else None
        values = dict(source=ev.source, event_id=ev.event_id[:300], email=email[:320],
                      email_key=key[:320], kind=ev.kind, status=(ev.status or "")[:32],
                      diagnostic=(ev.diagnostic or "")[:2000], delivery_id=delivery_id,
                      dispatch_id=dispatch_id, suppressed_as=reason,
                      received_at=ev.received_at, recorded_at=now)
        inserted = conn.execute(self._insert(conn), values).first()
        if inserted is None:  # a concurrent writer recorded it first
            return Recorded(ev, False, email, delivery_id, dispatch_id, None), None
        if ev.kind == "soft":
            reason = rule.suppression_for("soft", self._soft_hits(conn, key, rule.soft_window))
            if reason is not None:
                conn.execute(_SET_SUPPRESSED, {"src": ev.source, "eid": values["event_id"],
                                               "reason": reason})
        if reason is None:
            return Recorded(ev, True, email, delivery_id, dispatch_id, None), None
        if reason == "unsubscribed" and row is not None:  # list-level: one at a time
            detail = f"{ev.kind} {ev.status}".strip()[:200]
            changed = _sup.suppress(conn, email, reason, now, list_id=row.list_id,
                                    source=ev.source, detail=detail)
            return Recorded(ev, True, email, delivery_id, dispatch_id,
                            reason if changed else None), None
        return Recorded(ev, True, email, delivery_id, dispatch_id, None), reason

    def _insert(self, conn: Connection) -> Any:
        stmt = self._inserts.get(conn.dialect.name)
        if stmt is None:
            # RETURNING tells inserted from ignored (psycopg's rowcount can be -1)
            stmt = insert_ignore(conn, feedback_events, "source", "event_id").returning(
                feedback_events.c.id)
            self._inserts[conn.dialect.name] = stmt
        return stmt

    def _delivery(self, conn: Connection, ev: Any) -> Any:
        """The ledger row an event refers to: VERP id, Message-ID, provider id, latest row."""
        if ev.delivery_id is not None:
            r = conn.execute(_BY_ID, {"v": ev.delivery_id}).first()
            if r is not None:
                return r
        mid = _bare_message_id(ev.message_id)
        if mid:
            r = conn.execute(_BY_MESSAGE_ID, {"v": mid}).first()
            if r is not None:
                return r
        if ev.provider_id:
            r = conn.execute(_BY_PROVIDER_ID, {"v": ev.provider_id}).first()
            if r is not None:
                return r
        if not ev.email:
            return None
        return conn.execute(_LATEST, {"v": email_key(ev.email)}).first()

    def _soft_hits(self, conn: Connection, key: str, window: int) -> int:
        """Soft bounces among the address's last ``window`` copies (or events, with no copies)."""
        recent = [r[0] for r in conn.execute(
            select(deliveries.c.id).where(deliveries.c.email_key == key,
                                          deliveries.c.state.in_(("sent", "failed")))
            .order_by(deliveries.c.id.desc()).limit(window))]
        soft = and_(feedback_events.c.email_key == key, feedback_events.c.kind == "soft")
        if not recent:
            ids = select(feedback_events.c.id).where(soft).order_by(
                feedback_events.c.id.desc()).limit(window).subquery()
            return int(conn.execute(select(func.count()).select_from(ids)).scalar_one())
        return int(conn.execute(
            select(func.count(func.distinct(feedback_events.c.delivery_id)))
            .where(soft, feedback_events.c.delivery_id.in_(recent))).scalar_one())

    def remember_nonce(self, source: str, token: str, *, max_age: dt.timedelta) -> bool:
        """True the first time ``(source, token)`` is seen; tokens older than max_age are dropped."""
        with write_transaction(self.engine) as conn:
            return self._remember(conn, source, token, max_age, self.clock())

    def _remember(self, conn: Connection, source: str, token: str, max_age: dt.timedelta,
                  now: dt.datetime) -> bool:
        last = self._pruned.get(source)
        if last is None or now - last >= dt.timedelta(seconds=30):  # prune now and then
            conn.execute(delete(feedback_nonces).where(feedback_nonces.c.source == source,
                                                       feedback_nonces.c.seen_at < now - max_age))
            self._pruned[source] = now
        stmt = self._inserts.get("nonce:" + conn.dialect.name)
        if stmt is None:
            stmt = insert_ignore(conn, feedback_nonces, "source", "token").returning(
                feedback_nonces.c.token)
            self._inserts["nonce:" + conn.dialect.name] = stmt
        res = conn.execute(stmt, {"source": source, "token": token[:200], "seen_at": now})
        return res.first() is not None

    def set_nonce(self, source: str, token: str) -> None:
        """Record (or move to now) a marker such as the complaint gate's override."""
        now = self.clock()
        with write_transaction(self.engine) as conn:
            conn.execute(delete(feedback_nonces).where(feedback_nonces.c.source == source,
                                                       feedback_nonces.c.token == token))
            conn.execute(feedback_nonces.insert().values(source=source, token=token, seen_at=now))

    def nonce_time(self, source: str, token: str) -> dt.datetime | None:
        with self.engine.connect() as conn:
            value = conn.execute(select(feedback_nonces.c.seen_at).where(
                feedback_nonces.c.source == source,
                feedback_nonces.c.token == token)).scalar_one_or_none()
        return _aware(value) if value is not None else None

    # -- reading --------------------------------------------------------------

    def events(self, *, email: str | None = None, since: dt.datetime | None = None,
               kind: str | None = None, dispatch_ids: Sequence[int] | None = None,
               limit: int | None = None) -> list[EventRow]:
        t = feedback_events
        q = select(t).order_by(t.c.received_at, t.c.id)
        if email is not None:
            q = q.where(t.c.email_key == email_key(email))
        if since is not None:
            q = q.where(t.c.received_at >= since)
        if kind is not None:
            q = q.where(t.c.kind == kind)
        if dispatch_ids is not None:
            q = q.where(t.c.dispatch_id.in_(list(dispatch_ids)))
        if limit is not None:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [EventRow(r.id, r.source, r.event_id, r.email, r.kind, r.status, r.diagnostic,
                         r.delivery_id, r.dispatch_id, r.suppressed_as, _aware(r.received_at),
                         _aware(r.recorded_at)) for r in rows]

    def has_reports(self) -> bool:
        """True once an event came from a feedback source (anything but a send-time refusal)."""
        with self.engine.connect() as conn:
            return conn.execute(select(feedback_events.c.id).where(
                feedback_events.c.source != "smtp").limit(1)).first() is not None

    def rates(self, dispatch_ids: Sequence[int]) -> dict[int, DispatchRates]:
        """Sent and refused copies and distinct addresses per event kind, for each dispatch."""
        ids = list(dispatch_ids)
        if not ids:
            return {}
        t = feedback_events
        with self.engine.connect() as conn:
            states: dict[tuple[int, str], int] = {(int(d), st): int(n) for d, st, n in conn.execute(
                select(deliveries.c.dispatch_id, deliveries.c.state, func.count())
                .where(deliveries.c.dispatch_id.in_(ids),
                       deliveries.c.state.in_(("sent", "failed")))
                .group_by(deliveries.c.dispatch_id, deliveries.c.state))}
            kinds: dict[tuple[int, str], int] = {}
            for d, k, n in conn.execute(
                    select(t.c.dispatch_id, t.c.kind, func.count(func.distinct(t.c.email_key)))
                    .where(t.c.dispatch_id.in_(ids)).group_by(t.c.dispatch_id, t.c.kind)):
                kinds[(d, k)] = int(n)
        return {d: DispatchRates(d, states.get((d, "sent"), 0), kinds.get((d, "hard"), 0),
                                 kinds.get((d, "soft"), 0), kinds.get((d, "complaint"), 0),
                                 kinds.get((d, "unsubscribe"), 0), states.get((d, "failed"), 0))
                for d in ids}

    def recent_dispatch_ids(self, n: int, *, since: dt.datetime | None = None) -> list[int]:
        """The ``n`` newest dispatches that sent anything (created since ``since``), newest first."""
        q = (select(dispatches.c.id)
             .where(select(deliveries.c.id).where(deliveries.c.dispatch_id == dispatches.c.id,
                                                  deliveries.c.state == "sent").exists())
             .order_by(dispatches.c.created_at.desc(), dispatches.c.id.desc()).limit(n))
        if since is not None:
            q = q.where(dispatches.c.created_at >= since)
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(q)]

    def issue_rows(self, issue_id: str) -> IssueRows:
        """What the dispatch report of one issue draws (all its lists)."""
        with self.engine.connect() as conn:
            return issue_rows(conn, issue_id)

    def delivery_exists(self, delivery_id: int) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(deliveries.c.id).where(
                deliveries.c.id == delivery_id)).first() is not None


def record_smtp_failures(conn: Connection, outcomes: Sequence[Any], now: dt.datetime) -> None:
    """Send-time permanent refusals (the ledger's ``suppress_as`` outcomes) as ``smtp`` events."""
    for o in outcomes:
        if not (o.suppress_as and o.email):
            continue
        dispatch_id = conn.execute(select(deliveries.c.dispatch_id)
                                   .where(deliveries.c.id == o.id)).scalar_one_or_none()
        conn.execute(insert_ignore(conn, feedback_events, "source", "event_id").values(
            source="smtp", event_id=f"delivery:{o.id}", email=o.email,
            email_key=email_key(o.email), kind="hard", status=str(o.code or "")[:32],
            diagnostic=(o.text or "")[:2000], delivery_id=o.id, dispatch_id=dispatch_id,
            suppressed_as=o.suppress_as, received_at=now, recorded_at=now))
