"""Store side of ``pbtp-mailer report``: the rows one issue's dispatch report draws.

Plain tuples, addresses as keys only (the report shows domains and counts).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, select

from pbtp_mailer.store.feedback_schema import feedback_events
from pbtp_mailer.store.ledger_schema import deliveries, dispatches
from pbtp_mailer.store.schema import status_history

__all__ = ["IssueRows", "issue_rows"]


@dataclass(frozen=True)
class IssueRows:
    dispatches: list[tuple[int, str, str, dt.datetime]]  # id, list, subject, created
    deliveries: list[tuple[str, str, dt.datetime | None, int | None, str]]  # key, state, sent..
    events: list[tuple[str, str, str, str, dt.datetime]]  # key, kind, status, diagnostic, at
    unsubscribes: list[tuple[str, str, dt.datetime]]  # key, source, at


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def issue_rows(conn: Connection, issue_id: str) -> IssueRows:
    """What the dispatch report of one issue draws (all its lists)."""
    ds = conn.execute(select(dispatches.c.id, dispatches.c.list_name,
                             dispatches.c.subject, dispatches.c.created_at)
                      .where(dispatches.c.issue_id == issue_id)
                      .order_by(dispatches.c.id)).all()
    ids = [d.id for d in ds]
    dels = conn.execute(select(deliveries.c.email_key, deliveries.c.state,
                               deliveries.c.sent_at, deliveries.c.last_code,
                               deliveries.c.last_text)
                        .where(deliveries.c.dispatch_id.in_(ids))).all()
    evs = conn.execute(select(feedback_events.c.email_key, feedback_events.c.kind,
                              feedback_events.c.status, feedback_events.c.diagnostic,
                              feedback_events.c.received_at)
                       .where(feedback_events.c.dispatch_id.in_(ids))).all()
    first = min((_aware(d.created_at) for d in ds), default=None)
    unsubs = [] if first is None else conn.execute(
        select(status_history.c.email_key, status_history.c.source,
               status_history.c.changed_at)
        .where(status_history.c.status.in_(("unsubscribed", "unsubscribed-all")),
               status_history.c.changed_at >= first,
               status_history.c.email_key.in_(
                   select(deliveries.c.email_key).where(
                       deliveries.c.dispatch_id.in_(ids),
                       deliveries.c.state == "sent")))).all()
    return IssueRows(
        dispatches=[(d.id, d.list_name, d.subject, _aware(d.created_at)) for d in ds],
        deliveries=[(r.email_key, r.state, _aware(r.sent_at) if r.sent_at else None,
                     r.last_code, r.last_text or "") for r in dels],
        events=[(r.email_key, r.kind, r.status, r.diagnostic, _aware(r.received_at))
                for r in evs],
        unsubscribes=[(r.email_key, r.source, _aware(r.changed_at)) for r in unsubs])

