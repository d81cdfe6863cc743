"""Table of the cron scheduler (migration ``0003_schedule``), on ``schema.metadata``.

    schedule_seen   one per scheduled issue: the ``send_at`` (UTC) a
                    ``dispatch-due`` run first saw come due, and when it saw
                    it. A different ``send_at`` in the file (the date moved)
                    replaces the row, so the issue is judged afresh.

The stale guard itself needs no state (it compares ``send_at`` with the
clock while no dispatch exists); the record says when cron first noticed a
due issue, which the reports and ``pbtp-mailer schedule`` show.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, String, Table

from pbtp_mailer.store.schema import metadata

__all__ = ["schedule_seen"]

schedule_seen = Table(
    "schedule_seen",
    metadata,
    Column("issue_id", String(64), primary_key=True),
    Column("send_at", DateTime(timezone=True), nullable=False),
    Column("first_seen_at", DateTime(timezone=True), nullable=False),
)
