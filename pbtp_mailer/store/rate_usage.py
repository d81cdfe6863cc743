"""Messages sent per sender and window (``rate_usage``), so cron runs share a quota."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import Connection, select

from pbtp_mailer.store.ledger_schema import rate_usage
from pbtp_mailer.store.timestamps import aware

__all__ = ["count_usage", "usage"]


def count_usage(conn: Connection, sender: str, windows: Iterable[str], n: int,
                now: dt.datetime) -> None:
    """Add ``n`` messages to each window of ``sender`` (a new window starts at zero)."""
    from pbtp_mailer.dispatch.ratelimit import window_start

    for window in windows:
        start = window_start(now, window)
        mine = (rate_usage.c.sender == sender, rate_usage.c.window == window)
        row = conn.execute(select(rate_usage).where(*mine)).first()
        if row is None:
            conn.execute(rate_usage.insert().values(sender=sender, window=window,
                                                    window_start=start, count=n))
        elif aware(row.window_start) != start:
            conn.execute(rate_usage.update().where(*mine).values(window_start=start, count=n))
        else:
            conn.execute(rate_usage.update().where(*mine).values(count=rate_usage.c.count + n))


def usage(conn: Connection, sender: str, windows: Iterable[str],
          now: dt.datetime) -> dict[str, int]:
    """Messages ``sender`` sent in the current minute/hour/day window."""
    from pbtp_mailer.dispatch.ratelimit import window_start

    out = {}
    for window in windows:
        row = conn.execute(select(rate_usage).where(
            rate_usage.c.sender == sender, rate_usage.c.window == window)).first()
        current = row is not None and aware(row.window_start) == window_start(now, window)
        out[window] = int(row._mapping["count"]) if row is not None and current else 0
    return out
