"""GDPR access and erasure: everything held about one address, out or gone.

``export_address`` gathers the subscriber row, memberships, suppression,
status history, consent records (with the wording shown), pending sign-ups,
sign-up mails sent, every delivery of every issue and every bounce,
complaint or provider unsubscribe recorded for the address. ``erase_address``
deletes all of that in one transaction, except the delivery rows and the
feedback events: the statistics of past issues (``status``, ``report``) must
not change, so their address is replaced by ``erased:<keyed hash>`` (and any
copy of it in the last server reply or the bounce diagnostic is blanked; an
event id, which some providers build from the address, becomes a keyed hash
of itself). The same keyed hash goes into ``erased_addresses`` so that a
later CSV import skips the address (it is reported as skipped); a fresh,
confirmed sign-up lifts it.

Tables holding no address are left alone: ``feedback_nonces`` (webhook
tokens), ``runners``, ``rate_usage``, ``schedule_seen``, ``dispatches``.

The hash key is random, made once per database and kept in ``store_keys``:
the hash cannot be matched against another installation's or a precomputed
table, and it never leaves the database. (Whoever holds the database can test
a given address against it; that is exactly what the import check does.)
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime
from hashlib import sha256
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, select, update

from pbtp_mailer.store.db import insert_ignore, write_transaction
from pbtp_mailer.store.feedback_schema import feedback_events
from pbtp_mailer.store.ledger_schema import deliveries, dispatches
from pbtp_mailer.store.schema import lists, memberships, status_history, subscribers, suppressions
from pbtp_mailer.store.subscribe_schema import (
    consent_records,
    consent_wordings,
    erased_addresses,
    signup_requests,
    store_keys,
    subscribe_mails,
)
from pbtp_mailer.store.subscribers import email_key

if TYPE_CHECKING:
    from pbtp_mailer.store import Store

__all__ = ["erase_digest", "erased_among", "forget_erasure", "export_address", "erase_address",
           "ERASED_PREFIX"]

ERASED_PREFIX = "erased:"
_DOMAIN = b"pbtp-mailer/erased/v1\0"
_EVENT_DOMAIN = b"pbtp-mailer/erased-event/v1\0"


def _key(conn: Connection) -> bytes:
    value = conn.execute(select(store_keys.c.value).where(store_keys.c.name == "erase")).scalar()
    if value is None:
        conn.execute(insert_ignore(conn, store_keys, "name").values(
            name="erase", value=secrets.token_hex(32), created_at=datetime.now().astimezone()))
        value = conn.execute(select(store_keys.c.value)
                             .where(store_keys.c.name == "erase")).scalar_one()
    return str(value).encode("ascii")


def erase_digest(conn: Connection, key: str) -> str:
    """The keyed hash (hex) that stands for an address key after erasure."""
    return hmac.new(_key(conn), _DOMAIN + key.encode("utf-8"), sha256).hexdigest()


def erased_among(conn: Connection, keys: Sequence[str]) -> set[str]:
    """The address keys among ``keys`` that were erased (one indexed lookup each)."""
    if not keys or conn.execute(select(erased_addresses.c.digest).limit(1)).first() is None:
        return set()
    secret = _key(conn)
    by_digest = {hmac.new(secret, _DOMAIN + k.encode("utf-8"), sha256).hexdigest(): k
                 for k in keys}
    digests = list(by_digest)
    found: set[str] = set()
    for i in range(0, len(digests), 500):
        found.update(conn.execute(select(erased_addresses.c.digest).where(
            erased_addresses.c.digest.in_(digests[i:i + 500]))).scalars())
    return {by_digest[d] for d in found}


def forget_erasure(conn: Connection, key: str) -> None:
    """The person came back on their own: an import may add them again."""
    conn.execute(delete(erased_addresses).where(erased_addresses.c.digest == erase_digest(conn, key)))


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        text = value.isoformat(timespec="seconds")
        return text.replace("+00:00", "Z") if value.tzinfo else text + "Z"
    return value


def _rows(conn: Connection, q: Any) -> list[dict[str, Any]]:
    return [{k: _iso(v) for k, v in r._mapping.items()} for r in conn.execute(q)]


_SECTIONS = ("suppression", "history", "consent", "pending_signups", "deliveries",
             "signup_mails", "feedback")


def export_address(store: Store, raw_email: str) -> dict[str, Any] | None:
    """Everything held about the address as JSON-ready data; None when nothing is."""
    key = email_key(raw_email)
    with store.engine.connect() as conn:
        sub = conn.execute(select(subscribers).where(subscribers.c.email_key == key)).first()
        out: dict[str, Any] = {"email": sub.email if sub is not None else key}
        if sub is not None:
            out.update(name=sub.name, attributes=dict(sub.attrs or {}),
                       created_at=_iso(sub.created_at), updated_at=_iso(sub.updated_at))
            out["lists"] = _rows(conn, select(lists.c.name.label("list"), memberships.c.status,
                                              memberships.c.changed_at)
                                 .join(lists, lists.c.id == memberships.c.list_id)
                                 .where(memberships.c.subscriber_id == sub.id)
                                 .order_by(lists.c.name))
        sup = _rows(conn, select(suppressions.c.reason, suppressions.c.source,
                                 suppressions.c.created_at)
                    .where(suppressions.c.email_key == key))
        out["suppression"] = sup[0] if sup else None
        out["history"] = _rows(conn, select(
            status_history.c.changed_at, status_history.c.list_name.label("list"),
            status_history.c.status, status_history.c.source, status_history.c.detail)
            .where(status_history.c.email_key == key).order_by(status_history.c.id))
        out["consent"] = _rows(conn, select(
            consent_records.c.list_name.label("list"), consent_records.c.how,
            consent_records.c.detail, consent_records.c.requested_at,
            consent_records.c.confirmed_at, consent_wordings.c.version.label("wording_version"),
            consent_wordings.c.text.label("wording"), consent_records.c.ip,
            consent_records.c.user_agent)
            .outerjoin(consent_wordings, consent_wordings.c.id == consent_records.c.wording_id)
            .where(consent_records.c.email_key == key).order_by(consent_records.c.id))
        out["pending_signups"] = _rows(conn, select(
            lists.c.name.label("list"), signup_requests.c.how, signup_requests.c.requested_at,
            signup_requests.c.expires_at, signup_requests.c.used_at, signup_requests.c.ip,
            signup_requests.c.user_agent)
            .join(lists, lists.c.id == signup_requests.c.list_id)
            .where(signup_requests.c.email_key == key).order_by(signup_requests.c.id))
        out["deliveries"] = _rows(conn, select(
            deliveries.c.issue_id, dispatches.c.list_name.label("list"), deliveries.c.state,
            deliveries.c.attempts, deliveries.c.first_attempt_at, deliveries.c.sent_at,
            deliveries.c.message_id)
            .join(dispatches, dispatches.c.id == deliveries.c.dispatch_id)
            .where(deliveries.c.email_key == key).order_by(deliveries.c.id))
        out["signup_mails"] = _rows(conn, select(
            subscribe_mails.c.kind, subscribe_mails.c.sent_at)
            .where(subscribe_mails.c.email_key == key).order_by(subscribe_mails.c.id))
        fe = feedback_events.c
        out["feedback"] = _rows(conn, select(
            fe.received_at, fe.source, fe.kind, fe.status, fe.diagnostic,
            deliveries.c.issue_id, fe.suppressed_as)
            .outerjoin(deliveries, deliveries.c.id == fe.delivery_id)
            .where(fe.email_key == key).order_by(fe.id))
    held = sub is not None or any(out[k] for k in _SECTIONS)
    return out if held else None


def erase_address(store: Store, raw_email: str) -> bool:
    """Delete everything about the address (see the module docstring); False if nothing was held."""
    key = email_key(raw_email)
    now = store.clock()
    with write_transaction(store.engine) as conn:
        digest = erase_digest(conn, key)
        stand_in = ERASED_PREFIX + digest
        touched = 0
        for r in conn.execute(select(deliveries.c.id, deliveries.c.email, deliveries.c.last_text)
                              .where(deliveries.c.email_key == key)).all():
            text = r.last_text
            if text:
                text = _scrub(text, (r.email, key))
            conn.execute(update(deliveries).where(deliveries.c.id == r.id).values(
                email=stand_in, email_key=stand_in, subscriber_id=0, last_text=text))
            touched += 1
        touched += _pseudonymise_events(conn, key, stand_in)
        sid = conn.execute(select(subscribers.c.id)
                           .where(subscribers.c.email_key == key)).scalar()
        if sid is not None:
            conn.execute(delete(memberships).where(memberships.c.subscriber_id == sid))
            touched += conn.execute(delete(subscribers).where(subscribers.c.id == sid)).rowcount
        for table in (suppressions, status_history, consent_records, signup_requests,
                      subscribe_mails):
            touched += conn.execute(delete(table).where(table.c.email_key == key)).rowcount
        conn.execute(insert_ignore(conn, erased_addresses, "digest").values(
            digest=digest, erased_at=now))
    return touched > 0


def _pseudonymise_events(conn: Connection, key: str, stand_in: str) -> int:
    """Bounce and complaint events keep their kind and dispatch (the rates) but lose the address."""
    secret = _key(conn)
    fe = feedback_events.c
    n = 0
    for r in conn.execute(select(fe.id, fe.email, fe.event_id, fe.diagnostic)
                          .where(fe.email_key == key)).all():
        event_id = ERASED_PREFIX + hmac.new(secret, _EVENT_DOMAIN + r.event_id.encode("utf-8"),
                                            sha256).hexdigest()
        conn.execute(update(feedback_events).where(fe.id == r.id).values(
            email=stand_in, email_key=stand_in, event_id=event_id,
            diagnostic=_scrub(r.diagnostic or "", (r.email, key))))
        n += 1
    return n


def _scrub(text: str, spellings: Sequence[str]) -> str:
    low = text.lower()
    for s in spellings:
        i = low.find(s.lower())
        while s and i >= 0:
            text = text[:i] + "[erased]" + text[i + len(s):]
            low = text.lower()
            i = low.find(s.lower())
    return text
