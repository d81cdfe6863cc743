"""Tables of self-service subscription (migration ``0006_subscribe``), on ``schema.metadata``.

    list_options      per list: public (shown on forms and preference pages) or not
    consent_wordings  every consent text ever shown, versioned, never edited
    signup_requests   a pending double opt-in: who, which list, how, until when;
                      ``used_at`` makes its confirmation link single-use
    consent_records   one per subscription: how (form, import, admin, preferences),
                      when requested and confirmed, the wording, IP/user agent
                      only when ``[subscribe] record_ip`` is on
    subscribe_mails   when a confirmation mail went to an address (the per-address
                      daily limit); pruned after two days
    erased_addresses  keyed hashes of erased addresses: an old CSV cannot add them back
    store_keys        random keys that live with the data (the erasure hash key)

Rows about a person are keyed by ``email_key`` so that ``erase`` finds all of them.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from pbtp_mailer.store.schema import metadata

__all__ = [
    "list_options",
    "consent_wordings",
    "signup_requests",
    "consent_records",
    "subscribe_mails",
    "erased_addresses",
    "store_keys",
    "SUBSCRIBE_TABLES",
    "CONSENT_HOWS",
]

#: how a subscription came about
CONSENT_HOWS = ("form", "import", "admin", "preferences")

list_options = Table(
    "list_options",
    metadata,
    Column("list_id", Integer, ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True),
    Column("public", Boolean, nullable=False, default=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

consent_wordings = Table(
    "consent_wordings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False, unique=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("text", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

signup_requests = Table(
    "signup_requests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False),
    Column("name", Text, nullable=True),
    Column("list_id", Integer, ForeignKey("lists.id", ondelete="CASCADE"), nullable=False),
    Column("how", String(20), nullable=False),
    Column("wording_id", Integer, ForeignKey("consent_wordings.id"), nullable=True),
    Column("ip", String(64), nullable=True),
    Column("user_agent", Text, nullable=True),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    Index(None, "email_key"),
)

consent_records = Table(
    "consent_records",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email_key", String(320), nullable=False),
    Column("list_name", String(200), nullable=False),
    Column("how", String(20), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("wording_id", Integer, ForeignKey("consent_wordings.id"), nullable=True),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("confirmed_at", DateTime(timezone=True), nullable=False),
    Column("ip", String(64), nullable=True),
    Column("user_agent", Text, nullable=True),
    Index(None, "email_key", "id"),
)

subscribe_mails = Table(
    "subscribe_mails",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email_key", String(320), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Index(None, "email_key", "sent_at"),
)

erased_addresses = Table(
    "erased_addresses",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("erased_at", DateTime(timezone=True), nullable=False),
)

store_keys = Table(
    "store_keys",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("value", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

SUBSCRIBE_TABLES = ("list_options", "consent_wordings", "signup_requests", "consent_records",
                    "subscribe_mails", "erased_addresses", "store_keys")
