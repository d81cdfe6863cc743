"""Tables of the feedback loop (migration ``0005_feedback``), on ``schema.metadata``.

    feedback_events   one per bounce, complaint or provider unsubscribe, from
                      any source (smtp, dsn, arf, ses, postmark, sendgrid,
                      mailgun); unique on (source, event_id) so a webhook or a
                      DSN delivered twice is recorded once. ``delivery_id``
                      names the ledger row when it is known (VERP token,
                      Message-ID, provider id, else the address's latest row).
    feedback_nonces   webhook tokens already seen (Mailgun), so a replayed
                      request is refused; old rows are pruned on insert.
"""

from __future__ import annotations

from sqlalchemy import Column, Connection, DateTime, Index, Integer, String, Table, Text, UniqueConstraint

from pbtp_mailer.store import ledger_schema as _ledger
from pbtp_mailer.store.schema import metadata

__all__ = ["feedback_events", "feedback_nonces", "EVENT_KINDS", "EVENT_SOURCES", "LEDGER_INDEXES",
           "create_feedback_tables", "partial_provider_index"]

EVENT_KINDS = ("hard", "soft", "complaint", "unsubscribe")
EVENT_SOURCES = ("smtp", "dsn", "arf", "ses", "postmark", "sendgrid", "mailgun")

feedback_events = Table(
    "feedback_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(16), nullable=False),
    Column("event_id", String(300), nullable=False),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("status", String(32), nullable=False, default=""),
    Column("diagnostic", Text, nullable=False, default=""),
    Column("delivery_id", Integer, nullable=True),
    Column("dispatch_id", Integer, nullable=True),
    Column("suppressed_as", String(20), nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("source", "event_id"),
    Index(None, "email_key", "id"),
    Index(None, "dispatch_id", "kind"),
    Index(None, "received_at"),
)

feedback_nonces = Table(
    "feedback_nonces",
    metadata,
    Column("source", String(16), primary_key=True),
    Column("token", String(200), primary_key=True),
    Column("seen_at", DateTime(timezone=True), nullable=False),
)

# Lookups the feedback loop makes on the ledger: a returned copy by Message-ID or
# provider id, and an address's latest rows (the soft rule). Created by 0005.
deliveries_message_id = Index("ix_deliveries_message_id",
                              _ledger.deliveries.c.message_id)
# Partial (0010): provider ids exist only once an HTTP provider answered, and a
# delivery row is updated three times on its way (claimed, sending, sent), none
# of them HOT: a full index took ~10% of PostgreSQL's CPU per row for NULLs.
# ``provider_id = :v`` implies NOT NULL, so both databases use it for the lookup.
# Plain DDL (the same on both), not ``Index(postgresql_where=..., sqlite_where=...)``:
# dialect keywords make SQLAlchemy import both dialects when this module loads, 37 ms
# of every command's start-up.
PROVIDER_INDEX_DDL = ("CREATE INDEX IF NOT EXISTS ix_deliveries_provider_id "
                      "ON deliveries (provider_id) WHERE provider_id IS NOT NULL")
deliveries_email_key = Index("ix_deliveries_email_key_id",
                             _ledger.deliveries.c.email_key, _ledger.deliveries.c.id)
LEDGER_INDEXES = (deliveries_message_id, deliveries_email_key)


def partial_provider_index(conn: Connection) -> None:
    """Migration ``0010_provider_id_partial``: the provider id index without NULLs."""
    conn.exec_driver_sql("DROP INDEX IF EXISTS ix_deliveries_provider_id")
    conn.exec_driver_sql(PROVIDER_INDEX_DDL)


def create_feedback_tables(conn: Connection) -> None:
    """Migration ``0005_feedback``: the two tables and the ledger lookups above."""
    feedback_events.create(conn)
    feedback_nonces.create(conn)
    for index in LEDGER_INDEXES:
        index.create(conn, checkfirst=True)
    conn.exec_driver_sql(PROVIDER_INDEX_DDL)
