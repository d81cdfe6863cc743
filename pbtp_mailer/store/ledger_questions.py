"""Read-only questions about one dispatch's rows (counts, failures, timing), for ``status``.

A mixin of ``Ledger``: it needs only ``self.engine`` and writes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

from pbtp_mailer.store.ledger_schema import DELIVERY_STATES, deliveries
from pbtp_mailer.store.timestamps import aware

__all__ = ["LedgerQuestions"]


class LedgerQuestions:
    """What the ledger can tell about a dispatch without changing it."""

    engine: Any

    def counts(self, dispatch_id: int) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(deliveries.c.state, func.count())
                                .where(deliveries.c.dispatch_id == dispatch_id)
                                .group_by(deliveries.c.state)).all()
        out = {s: 0 for s in DELIVERY_STATES}
        out.update({state: n for state, n in rows})
        return out

    def next_due(self, dispatch_id: int) -> dt.datetime | None:
        with self.engine.connect() as conn:
            value = conn.execute(select(func.min(deliveries.c.next_attempt_at)).where(
                deliveries.c.dispatch_id == dispatch_id,
                deliveries.c.state == "deferred")).scalar_one()
        return aware(value)

    def rows(self, dispatch_id: int, state: str | None = None,
             limit: int | None = None) -> list[Any]:
        q = select(deliveries).where(deliveries.c.dispatch_id == dispatch_id)
        if state is not None:
            q = q.where(deliveries.c.state == state)
        q = q.order_by(deliveries.c.id)
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return conn.execute(q).all()

    def failures(self, dispatch_id: int) -> list[tuple[int | None, str, int]]:
        """(code, text, count) of failed rows, most common first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(deliveries.c.last_code, deliveries.c.last_text, func.count())
                .where(deliveries.c.dispatch_id == dispatch_id, deliveries.c.state == "failed")
                .group_by(deliveries.c.last_code, deliveries.c.last_text)
                .order_by(func.count().desc())).all()
        return [(c, t or "", n) for c, t, n in rows]

    def timing(self, dispatch_id: int) -> tuple[dt.datetime | None, dt.datetime | None]:
        with self.engine.connect() as conn:
            first, last = conn.execute(select(func.min(deliveries.c.first_attempt_at),
                                              func.max(deliveries.c.sent_at))
                                       .where(deliveries.c.dispatch_id == dispatch_id)).one()
        return aware(first), aware(last)

