"""Tables of the delivery ledger (migration ``0002_ledger``), on ``schema.metadata``.

    dispatches   one per (issue, list): frozen content and its hash, state,
                 and why it is paused (``pause_reason``, migration ``0004``)
    deliveries   one per (issue, address): pending -> claimed -> sending -> sent
                 | failed | deferred | skipped | rejected ('claimed': reserved by a
                 run, not yet on the wire; 'rejected': the server refused the message
                 itself, a person's next run tries it again); attempts, last reply, Message-ID,
                 provider id, who claimed it, timestamps
    runners      one per dispatcher process: heartbeat (tells a crashed
                 owner of 'sending' rows from a live one)
    rate_usage   messages sent per sender and window (minute/hour/day), so
                 successive cron runs together respect a quota

``deliveries`` is unique on (issue_id, email_key): an address on two lists
gets an issue once.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from pbtp_mailer.store.schema import metadata

__all__ = ["dispatches", "deliveries", "runners", "rate_usage", "DELIVERY_STATES"]

DELIVERY_STATES = ("pending", "claimed", "sending", "sent", "failed", "deferred", "skipped",
                   "rejected")

dispatches = Table(
    "dispatches",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("issue_id", String(64), nullable=False),
    Column("list_id", Integer, nullable=True),
    Column("list_name", String(200), nullable=False),
    Column("issue_file", Text, nullable=False),
    Column("sender", String(200), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("subject", Text, nullable=False),
    Column("preheader", Text, nullable=False),
    Column("language", String(35), nullable=False),
    Column("frozen_text", Text, nullable=False),
    Column("frozen_html", Text, nullable=False),
    Column("state", String(16), nullable=False),  # running | paused | done
    Column("note", Text, nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    # a PauseReason value while state = 'paused' (0004_pause_reason)
    Column("pause_reason", String(32), nullable=True),
    # sha256 of From, Reply-To and List-Id when the dispatch froze them (0007_headers_hash);
    # NULL for a dispatch started before: its next run adopts the headers it sends with
    Column("headers_hash", String(64), nullable=True),
    UniqueConstraint("issue_id", "list_name"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("dispatch_id", Integer, ForeignKey("dispatches.id", ondelete="CASCADE"),
           nullable=False),
    Column("issue_id", String(64), nullable=False),
    Column("subscriber_id", Integer, nullable=False),
    Column("list_id", Integer, nullable=False),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("last_code", Integer, nullable=True),
    Column("last_text", Text, nullable=True),
    Column("message_id", String(500), nullable=True),
    Column("provider_id", String(500), nullable=True),
    Column("claimed_by", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("first_attempt_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("issue_id", "email_key"),
    Index(None, "dispatch_id", "state", "id"),
)

runners = Table(
    "runners",
    metadata,
    Column("owner", String(200), primary_key=True),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False),
)

rate_usage = Table(
    "rate_usage",
    metadata,
    Column("sender", String(200), primary_key=True),
    Column("window", String(8), primary_key=True),  # minute | hour | day
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("count", Integer, nullable=False),
)
