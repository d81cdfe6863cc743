"""When cron first saw each scheduled issue come due (``schedule_seen``)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, select

from pbtp_mailer.store.schedule_schema import schedule_seen as seen
from pbtp_mailer.store.timestamps import aware

__all__ = ["first_seen", "note_due"]


def first_seen(conn: Connection, issue_id: str, send_at: dt.datetime) -> dt.datetime | None:
    """When cron first saw ``issue_id`` due at this ``send_at`` (None: not yet, or it moved)."""
    row = conn.execute(select(seen).where(seen.c.issue_id == issue_id)).first()
    if row is None or aware(row.send_at) != send_at:
        return None
    return aware(row.first_seen_at)


def note_due(conn: Connection, issue_id: str, send_at: dt.datetime,
             now: dt.datetime) -> tuple[dt.datetime, bool]:
    """Record that cron saw ``issue_id`` due: (first seen, whether ``send_at`` moved)."""
    now = now.astimezone(dt.UTC)
    row = conn.execute(select(seen).where(seen.c.issue_id == issue_id)).first()
    if row is not None and aware(row.send_at) == send_at:
        return aware(row.first_seen_at) or now, False
    if row is not None:
        conn.execute(seen.update().where(seen.c.issue_id == issue_id).values(
            send_at=send_at, first_seen_at=now))
    else:
        conn.execute(seen.insert().values(issue_id=issue_id, send_at=send_at,
                                          first_seen_at=now))
    return now, row is not None
