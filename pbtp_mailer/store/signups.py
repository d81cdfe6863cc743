"""Data access for self-service subscription: public lists, pending sign-ups, consent.

``SignupStore(store)`` is the door the ``subscribe`` package uses; nothing
outside ``store/`` touches these tables. A confirmation is one transaction:
the request is marked used (only if it was not, so two clicks cannot both
win), the subscriber is created or updated, an address-level suppression and
an erasure hash are lifted (the person proved, just now, that they want the
mail), the membership becomes ``subscribed``, and a consent record and a
history row are written.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, func, select, update

from pbtp_mailer.store.db import insert_ignore, write_transaction
from pbtp_mailer.store.erasure import forget_erasure
from pbtp_mailer.store.schema import lists, memberships, subscribers, suppressions
from pbtp_mailer.store.subscribe_schema import (
    consent_records,
    consent_wordings,
    list_options,
    signup_requests,
    subscribe_mails,
)
from pbtp_mailer.store.subscribers import (
    MailingList,
    email_key,
    ensure_subscriber,
    get_list,
    record_history,
)

if TYPE_CHECKING:
    from pbtp_mailer.store import Store

__all__ = ["SignupStore", "Pending", "ListStatus", "ConsentRecord", "record_consent", "aware"]


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@dataclass(frozen=True)
class Pending:
    id: int
    email: str
    name: str | None
    list: MailingList
    how: str
    requested_at: datetime
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True)
class ListStatus:
    list: MailingList
    status: str  # subscribed | unsubscribed | bounced | complained | none


@dataclass(frozen=True)
class ConsentRecord:
    list_name: str
    how: str
    detail: str
    requested_at: datetime
    confirmed_at: datetime
    wording_version: int | None
    wording: str | None
    ip: str | None
    user_agent: str | None


def record_consent(conn: Connection, *, key: str, list_name: str, how: str, now: datetime,
                   requested_at: datetime | None = None, detail: str = "",
                   wording_id: int | None = None, ip: str | None = None,
                   user_agent: str | None = None) -> None:
    conn.execute(consent_records.insert().values(
        email_key=key, list_name=list_name, how=how, detail=detail, wording_id=wording_id,
        requested_at=requested_at or now, confirmed_at=now, ip=ip, user_agent=user_agent))


class SignupStore:
    """Public lists, pending sign-ups and consent records on a ``Store``'s database."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine
        self.clock = store.clock

    # -- public lists ---------------------------------------------------------

    def set_public(self, list_name: str, public: bool) -> MailingList:
        now = self.clock()
        with write_transaction(self.engine) as conn:
            ml = get_list(conn, list_name)
            conn.execute(insert_ignore(conn, list_options, "list_id").values(
                list_id=ml.id, public=public, updated_at=now))
            conn.execute(update(list_options).where(list_options.c.list_id == ml.id)
                         .values(public=public, updated_at=now))
        return ml

    def public_lists(self) -> list[MailingList]:
        q = (select(lists).join(list_options, list_options.c.list_id == lists.c.id)
             .where(list_options.c.public.is_(True)).order_by(lists.c.name))
        with self.engine.connect() as conn:
            return [MailingList(r.id, r.name, r.description or "") for r in conn.execute(q)]

    def public_list(self, name: str) -> MailingList | None:
        """The public list ``name``; None for an unknown or private one (both are a 404)."""
        return next((ml for ml in self.public_lists() if ml.name == name), None)

    def is_public(self, list_id: int) -> bool:
        with self.engine.connect() as conn:
            return bool(conn.execute(select(list_options.c.public)
                                     .where(list_options.c.list_id == list_id)).scalar())

    # -- consent wording ------------------------------------------------------

    def wording(self, text: str) -> int:
        """The id of this exact wording, stored as a new version the first time it is shown."""
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        with write_transaction(self.engine) as conn:
            found = conn.execute(select(consent_wordings.c.id)
                                 .where(consent_wordings.c.digest == digest)).scalar()
            if found is not None:
                return int(found)
            version = conn.execute(select(func.coalesce(func.max(consent_wordings.c.version),
                                                        0))).scalar_one() + 1
            pk = conn.execute(consent_wordings.insert().values(
                version=version, digest=digest, text=text, created_at=self.clock())
            ).inserted_primary_key
            assert pk is not None
            return int(pk[0])

    # -- sign-up requests -----------------------------------------------------

    def request(self, email: str, ml: MailingList, *, how: str, ttl: timedelta,
                name: str | None = None, wording_id: int | None = None,
                ip: str | None = None, user_agent: str | None = None) -> Pending:
        now = self.clock()
        with write_transaction(self.engine) as conn:
            # an unconfirmed request is kept no longer than its link works
            conn.execute(delete(signup_requests).where(signup_requests.c.expires_at < now))
            pk = conn.execute(signup_requests.insert().values(
                email=email, email_key=email_key(email), name=name, list_id=ml.id, how=how,
                wording_id=wording_id, ip=ip, user_agent=user_agent, requested_at=now,
                expires_at=now + ttl)).inserted_primary_key
        assert pk is not None
        return Pending(int(pk[0]), email, name, ml, how, now, now + ttl, None)

    def pending(self, request_id: int) -> Pending | None:
        q = (select(signup_requests, lists.c.name.label("list_name"),
                    lists.c.description.label("list_description"))
             .join(lists, lists.c.id == signup_requests.c.list_id)
             .where(signup_requests.c.id == request_id))
        with self.engine.connect() as conn:
            r = conn.execute(q).first()
        if r is None:
            return None
        at = aware(r.requested_at)
        until = aware(r.expires_at)
        assert at is not None and until is not None
        return Pending(r.id, r.email, r.name, MailingList(r.list_id, r.list_name,
                                                          r.list_description or ""),
                       r.how, at, until, aware(r.used_at))

    def confirm(self, request_id: int) -> bool:
        """Turn a pending request into a subscription (see the module docstring).

        False when it was already used (a second click, or a race lost).
        """
        now = self.clock()
        with write_transaction(self.engine) as conn:
            won = conn.execute(update(signup_requests).where(
                signup_requests.c.id == request_id, signup_requests.c.used_at.is_(None)
            ).values(used_at=now)).rowcount
            if not won:
                return False
            r = conn.execute(select(signup_requests, lists.c.name.label("list_name"))
                             .join(lists, lists.c.id == signup_requests.c.list_id)
                             .where(signup_requests.c.id == request_id)).one()
            self._subscribe(conn, r, now)
        return True

    def _subscribe(self, conn: Connection, r: Any, now: datetime) -> None:
        key = r.email_key
        sid = ensure_subscriber(conn, r.email, key, now, r.name)
        history: list[dict[str, Any]] = []
        if conn.execute(delete(suppressions).where(suppressions.c.email_key == key)).rowcount:
            history.append(dict(email_key=key, list_name=None, status="resubscribed",
                                source=r.how, changed_at=now))
        forget_erasure(conn, key)
        status = conn.execute(select(memberships.c.status).where(
            memberships.c.subscriber_id == sid, memberships.c.list_id == r.list_id)
        ).scalar_one_or_none()
        if status is None:
            conn.execute(memberships.insert().values(subscriber_id=sid, list_id=r.list_id,
                                                     status="subscribed", changed_at=now))
        elif status != "subscribed":
            conn.execute(update(memberships).where(
                memberships.c.subscriber_id == sid, memberships.c.list_id == r.list_id
            ).values(status="subscribed", changed_at=now))
        history.append(dict(email_key=key, list_name=r.list_name, status="subscribed",
                            source=r.how, detail="confirmed", changed_at=now))
        record_history(conn, history)
        record_consent(conn, key=key, list_name=r.list_name, how=r.how, now=now,
                       requested_at=r.requested_at, wording_id=r.wording_id, ip=r.ip,
                       user_agent=r.user_agent)

    # -- what a reader sees ---------------------------------------------------

    def subscriber_id(self, email: str) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(select(subscribers.c.id)
                                .where(subscribers.c.email_key == email_key(email))).scalar()

    def statuses(self, email: str) -> tuple[str | None, list[ListStatus]]:
        """(name, every public list with this address's status on it)."""
        key = email_key(email)
        with self.engine.connect() as conn:
            sub = conn.execute(select(subscribers.c.id, subscribers.c.name)
                               .where(subscribers.c.email_key == key)).first()
            reason = conn.execute(select(suppressions.c.reason)
                                  .where(suppressions.c.email_key == key)).scalar()
            mine: dict[int, str] = {}
            if sub is not None:
                mine = {r.list_id: r.status for r in conn.execute(
                    select(memberships.c.list_id, memberships.c.status)
                    .where(memberships.c.subscriber_id == sub.id))}
        out = []
        for ml in self.public_lists():
            status = mine.get(ml.id, "none")
            if reason is not None and status != "none":
                status = reason
            out.append(ListStatus(ml, status))
        return (sub.name if sub is not None else None), out

    def set_name(self, email: str, name: str | None) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(update(subscribers).where(subscribers.c.email_key == email_key(email))
                         .values(name=name, updated_at=self.clock()))

    def consents(self, email: str) -> list[ConsentRecord]:
        q = (select(consent_records, consent_wordings.c.version, consent_wordings.c.text)
             .outerjoin(consent_wordings, consent_wordings.c.id == consent_records.c.wording_id)
             .where(consent_records.c.email_key == email_key(email))
             .order_by(consent_records.c.id))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [ConsentRecord(r.list_name, r.how, r.detail or "", aware(r.requested_at) or r.requested_at,
                              aware(r.confirmed_at) or r.confirmed_at, r.version, r.text, r.ip,
                              r.user_agent) for r in rows]

    # -- the per-address mail limit --------------------------------------------

    def take_mail_slot(self, email: str, kind: str, per_day: int) -> bool:
        """Count one mail to the address against ``per_day``; False (nothing noted) when over.

        Counted and noted in one write transaction (SQLite's write lock, a
        PostgreSQL advisory lock per address), so parallel requests cannot
        both take the last slot.
        """
        now = self.clock()
        key = email_key(email)
        with write_transaction(self.engine) as conn:
            if conn.dialect.name == "postgresql":
                lock = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") - 2**31
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock(7351, {lock})")
            conn.execute(delete(subscribe_mails)
                         .where(subscribe_mails.c.sent_at < now - timedelta(days=2)))
            used = conn.execute(select(func.count()).select_from(subscribe_mails).where(
                subscribe_mails.c.email_key == key,
                subscribe_mails.c.sent_at > now - timedelta(days=1))).scalar_one()
            if used >= per_day:
                return False
            conn.execute(subscribe_mails.insert().values(email_key=key, kind=kind, sent_at=now))
        return True
