"""Table definitions (SQLAlchemy Core) on one ``metadata``.

Tables are created by named migrations (``migrations.py``), never by
``metadata.create_all``. Addresses are keyed by ``email_key``, the
lower-cased normalised address, so ``Ann@Example.org`` and
``ann@example.org`` are one person.

    lists           a mailing list (name, description)
    subscribers     one row per address: display form, name, attributes (JSON)
    memberships     (subscriber, list) -> subscribed | unsubscribed
    suppressions    address-level: bounced | complained | unsubscribed (from all)
    status_history  every status change with its time and source

``status_history`` keeps the list *name* rather than a foreign key so the
history survives ``lists delete``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

__all__ = [
    "metadata",
    "lists",
    "subscribers",
    "memberships",
    "suppressions",
    "status_history",
    "MEMBERSHIP_STATUSES",
    "SUPPRESSION_REASONS",
    "SOURCES",
]

MEMBERSHIP_STATUSES = ("subscribed", "unsubscribed")
SUPPRESSION_REASONS = ("unsubscribed", "bounced", "complained")
SOURCES = ("cli", "import", "one-click", "mailto", "dispatch", "suppress-import")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

lists = Table(
    "lists",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False, unique=True),
    Column("name", Text, nullable=True),
    Column("attrs", JSON, nullable=False, default=dict),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

memberships = Table(
    "memberships",
    metadata,
    Column(
        "subscriber_id",
        Integer,
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("list_id", Integer, ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Index(None, "list_id", "status", "subscriber_id"),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("email_key", String(320), primary_key=True),
    Column("reason", String(20), nullable=False),
    Column("source", String(40), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

status_history = Table(
    "status_history",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email_key", String(320), nullable=False),
    Column("list_name", String(200), nullable=True),
    Column("status", String(20), nullable=False),
    Column("source", String(40), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Index(None, "email_key", "id"),
)
