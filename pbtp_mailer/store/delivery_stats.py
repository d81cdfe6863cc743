"""Read-only delivery figures of recent dispatches (``pbtp-mailer doctor``'s [reputation]).

Sent and permanently failed rows per dispatch started since a time. Whether
complaints are known depends on a feedback events table: when this database
has none, ``complaints`` is ``None`` (unknown), never 0.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, func, inspect, select

from pbtp_mailer.store.ledger_schema import deliveries, dispatches

__all__ = ["DispatchFigures", "DeliveryStats"]


@dataclass(frozen=True)
class DispatchFigures:
    issue_id: str
    list_name: str
    created_at: dt.datetime
    sent: int
    failed: int
    complaints: int | None = None


class DeliveryStats:
    """Figures from the ledger tables, for the store's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def has_feedback_events(self) -> bool:
        return inspect(self.engine).has_table("feedback_events")

    def recent(self, since: dt.datetime) -> list[DispatchFigures]:
        query = (select(dispatches.c.id, dispatches.c.issue_id, dispatches.c.list_name,
                        dispatches.c.created_at, deliveries.c.state, func.count())
                 .join(deliveries, deliveries.c.dispatch_id == dispatches.c.id)
                 .where(dispatches.c.created_at >= since,
                        deliveries.c.state.in_(("sent", "failed")))
                 .group_by(dispatches.c.id, dispatches.c.issue_id, dispatches.c.list_name,
                           dispatches.c.created_at, deliveries.c.state)
                 .order_by(dispatches.c.id))
        rows: dict[int, dict[str, object]] = {}
        with self.engine.connect() as conn:
            for did, issue_id, list_name, created, state, n in conn.execute(query):
                row = rows.setdefault(did, {"issue_id": issue_id, "list_name": list_name,
                                            "created_at": created, "sent": 0, "failed": 0})
                row[state] = int(n)
        return [DispatchFigures(**r) for r in rows.values()]  # type: ignore[arg-type]
