"""Tables of the worker fleet (migration ``0009_workers``), on ``schema.metadata``.

    rate_buckets   one per sender: the token bucket every worker leases its
                   per-second tokens from (tokens, and the wall-clock second
                   they were counted at), so N workers together keep one rate
    workers        one per ``send`` process: host, pid, what it sends, when it
                   started, its last heartbeat and the lease that heartbeat
                   bought, messages sent and its recent rate. A worker whose
                   lease runs out is dead: its ``claimed`` rows go to the
                   others, its ``sending`` rows are ambiguous. A clean exit
                   deletes the row; a dead worker's row stays (``status``
                   shows it) until it is a week old.

The minute/hour/day quota counts stay in ``rate_usage`` (``ledger_schema``);
``ratebucket.SharedRateLimit`` updates them in the same transaction as the
bucket, so a quota holds across workers and across runs.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Float, Integer, String, Table, Text

from pbtp_mailer.store.schema import metadata

__all__ = ["rate_buckets", "workers"]

rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("sender", String(200), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("stamp", Float, nullable=False),  # wall-clock seconds (time.time()) of `tokens`
)

workers = Table(
    "workers",
    metadata,
    Column("owner", String(200), primary_key=True),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("issue_id", String(64), nullable=True),
    Column("list_name", String(200), nullable=True),
    Column("sender", String(200), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    Column("lease_until", DateTime(timezone=True), nullable=False),
    Column("sent", Integer, nullable=False, default=0),
    Column("rate", Float, nullable=True),  # messages/s over the last heartbeat interval
    Column("dead_at", DateTime(timezone=True), nullable=True),  # when another worker saw it dead
    Column("note", Text, nullable=True),
)
