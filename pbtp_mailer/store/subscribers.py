"""Lists, subscribers, their memberships and the history of every status change.

Functions take an open ``Connection`` (the caller owns the transaction) and
the current time, so the ``Store`` facade can group several calls in one
transaction and tests can inject a clock. Subscriber data is personal data:
nothing here logs anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, delete, func, select, update

from pbtp_mailer.errors import StoreError, UnknownListError
from pbtp_mailer.store.schema import lists, memberships, status_history, subscribers, suppressions

__all__ = [
    "InvalidAddress",
    "MailingList",
    "Recipient",
    "ListCounts",
    "SubscriberDetails",
    "HistoryEntry",
    "normalize_email",
    "check_sendable",
    "email_key",
    "get_list",
    "all_lists",
    "create_list",
    "delete_list",
    "list_counts",
    "add_subscriber",
    "remove_subscriber",
    "subscriber_details",
    "record_history",
]


class InvalidAddress(ValueError):
    """An address that cannot be stored; ``str()`` is the reason for the user."""


@dataclass(frozen=True)
class MailingList:
    id: int
    name: str
    description: str


@dataclass(frozen=True)
class Recipient:
    subscriber_id: int
    list_id: int
    email: str
    name: str | None
    attrs: dict[str, str] = field(hash=False)


@dataclass(frozen=True)
class ListCounts:
    name: str
    description: str
    active: int
    unsubscribed: int
    bounced: int
    complained: int


@dataclass(frozen=True)
class HistoryEntry:
    changed_at: datetime
    list_name: str | None
    status: str
    source: str
    detail: str


@dataclass(frozen=True)
class SubscriberDetails:
    email: str
    name: str | None
    attrs: dict[str, str]
    memberships: list[tuple[str, str, datetime]]  # (list name, effective status, since)
    suppression: tuple[str, datetime] | None  # (reason, since) for the whole address
    history: list[HistoryEntry]


def email_key(email: str) -> str:
    """The uniqueness key of an (already normalised) address."""
    return email.strip().lower()


def normalize_email(raw: str) -> tuple[str, str]:
    """``(normalised address, key)``; raises ``InvalidAddress`` with a readable reason."""
    if "\r" in raw or "\n" in raw:
        raise InvalidAddress(f"address {raw!r} contains a line break (CR/LF)")
    text = raw.strip()
    if not text:
        raise InvalidAddress("no address")
    # imported here: email_validator costs ~18 ms at start-up and send never validates
    from email_validator import EmailNotValidError, validate_email

    try:
        normalized = validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InvalidAddress(f"invalid address {text!r}: {exc}") from None
    return normalized, email_key(normalized)


def check_text(value: str | None, what: str) -> str | None:
    """Names end up in headers and on terminals: refuse control characters there.

    Every C0 and C1 control character but the tab is refused (VT, ESC, DEL,
    NEL...): an ESC in a name would drive the terminal of whoever lists it.
    """
    if value is None:
        return None
    if any(c in value for c in "\r\n\0"):
        raise InvalidAddress(f"{what} {value!r} contains a line break or NUL")
    bad = CONTROL_CHARS.search(value)
    if bad:
        raise InvalidAddress(f"{what} {value!r} contains the control character "
                             f"U+{ord(bad.group()):04X}")
    return value.strip() or None


CONTROL_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
"""C0 and C1 control characters except the tab."""


def check_sendable(email: str) -> None:
    """Refuse an address no sender of ours can deliver to (messages are ASCII-only).

    A non-ASCII local part needs SMTPUTF8, which ``compose.message`` does not
    write; a non-ASCII domain is delivered in its ASCII (``xn--``) form.
    """
    if email.isascii():
        return
    local, _, domain = email.rpartition("@")
    if not local.isascii():
        raise InvalidAddress(f"address {email!r} has non-ASCII characters before the @: "
                             "sending to it needs SMTPUTF8, which pbtp-mailer does not use")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_domain = "xn--..."
    raise InvalidAddress(f"address {email!r} has a non-ASCII domain: write it in its ASCII "
                         f"form ({local}@{ascii_domain})")


def _mailing_list(row: Any) -> MailingList:
    return MailingList(id=row.id, name=row.name, description=row.description or "")


def all_lists(conn: Connection) -> list[MailingList]:
    rows = conn.execute(select(lists).order_by(lists.c.name)).all()
    return [_mailing_list(r) for r in rows]


def get_list(conn: Connection, name: str) -> MailingList:
    row = conn.execute(select(lists).where(lists.c.name == name)).first()
    if row is None:
        known = ", ".join(m.name for m in all_lists(conn)) or "none yet"
        raise UnknownListError(
            f"unknown list {name!r} (known: {known})",
            hint=f"create it with: pbtp-mailer lists create {name}",
        )
    return _mailing_list(row)


def create_list(conn: Connection, name: str, description: str, now: datetime) -> MailingList:
    name = name.strip()
    if not name or any(c in name for c in "\r\n\0") or len(name) > 200:
        raise StoreError(f"list name {name!r} must be 1-200 characters on one line")
    if conn.execute(select(lists.c.id).where(lists.c.name == name)).first() is not None:
        raise StoreError(f"list {name!r} already exists")
    pk = conn.execute(
        lists.insert().values(name=name, description=description, created_at=now)
    ).inserted_primary_key
    assert pk is not None
    return MailingList(id=int(pk[0]), name=name, description=description)


def delete_list(conn: Connection, name: str) -> int:
    """Delete a list and its memberships; return how many memberships went with it."""
    ml = get_list(conn, name)
    count = conn.execute(
        select(func.count()).select_from(memberships).where(memberships.c.list_id == ml.id)
    ).scalar_one()
    conn.execute(delete(memberships).where(memberships.c.list_id == ml.id))
    conn.execute(delete(lists).where(lists.c.id == ml.id))
    return int(count)


def list_counts(conn: Connection) -> list[ListCounts]:
    reason, status = suppressions.c.reason, memberships.c.status

    def count(cond: Any) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    q = (
        select(
            lists.c.name,
            lists.c.description,
            count(and_(reason.is_(None), status == "subscribed")).label("active"),
            count(
                ((reason.is_(None)) & (status == "unsubscribed")) | (reason == "unsubscribed")
            ).label("unsubscribed"),
            count(reason == "bounced").label("bounced"),
            count(reason == "complained").label("complained"),
        )
        .select_from(
            lists.outerjoin(memberships, memberships.c.list_id == lists.c.id)
            .outerjoin(subscribers, subscribers.c.id == memberships.c.subscriber_id)
            .outerjoin(suppressions, suppressions.c.email_key == subscribers.c.email_key)
        )
        .group_by(lists.c.id, lists.c.name, lists.c.description)
        .order_by(lists.c.name)
    )
    return [
        ListCounts(r.name, r.description or "", int(r.active), int(r.unsubscribed),
                   int(r.bounced), int(r.complained))
        for r in conn.execute(q)
    ]


def record_history(conn: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
    """Append history rows: dicts with email_key, list_name, status, source, detail, changed_at."""
    batch = [dict(r) for r in rows]
    for r in batch:
        r.setdefault("detail", "")
    if batch:
        conn.execute(status_history.insert(), batch)


def ensure_subscriber(
    conn: Connection,
    email: str,
    key: str,
    now: datetime,
    name: str | None = None,
    attrs: Mapping[str, str] | None = None,
) -> int:
    """The id of the subscriber with ``key``, created if missing; name/attrs merged in."""
    row = conn.execute(select(subscribers).where(subscribers.c.email_key == key)).first()
    if row is None:
        pk = conn.execute(
            subscribers.insert().values(
                email=email, email_key=key, name=name, attrs=dict(attrs or {}),
                created_at=now, updated_at=now,
            )
        ).inserted_primary_key
        assert pk is not None
        return int(pk[0])
    new_attrs = {**(row.attrs or {}), **(attrs or {})}
    new_name = name if name else row.name
    if new_attrs != (row.attrs or {}) or new_name != row.name:
        conn.execute(
            update(subscribers)
            .where(subscribers.c.id == row.id)
            .values(name=new_name, attrs=new_attrs, updated_at=now)
        )
    return int(row.id)


def _may_subscribe(conn: Connection, email: str, key: str, *, resubscribe: bool) -> str | None:
    """Refuse an address that must not be added back; returns its suppression reason, if any.

    A bounce or complaint is never lifted here; an unsubscribe from all lists
    or a GDPR erasure only with ``resubscribe`` (the person asked to come back),
    which also forgets the erasure.
    """
    sup = conn.execute(
        select(suppressions.c.reason).where(suppressions.c.email_key == key)
    ).scalar_one_or_none()
    if sup in ("bounced", "complained"):
        raise StoreError(f"{email} is suppressed ({sup}); it cannot be subscribed again")
    if sup == "unsubscribed" and not resubscribe:
        raise StoreError(
            f"{email} unsubscribed from all lists",
            hint="pass --resubscribe only if they asked to subscribe again",
        )
    from pbtp_mailer.store.erasure import erased_among, forget_erasure

    if erased_among(conn, [key]):
        if not resubscribe:
            raise StoreError(f"{email} was erased on request",
                             hint="pass --resubscribe only if they asked to subscribe again")
        forget_erasure(conn, key)
    return sup


def add_subscriber(
    conn: Connection,
    list_name: str,
    raw_email: str,
    now: datetime,
    *,
    name: str | None = None,
    attrs: Mapping[str, str] | None = None,
    resubscribe: bool = False,
    source: str = "cli",
) -> str:
    """Subscribe an address to a list; returns ``'added'``, ``'resubscribed'`` or ``'unchanged'``.

    A list-level or address-level unsubscribe is only lifted with
    ``resubscribe=True`` (the person asked to come back); a bounce or a
    complaint never is.
    """
    ml = get_list(conn, list_name)
    email, key = normalize_email(raw_email)
    check_sendable(email)
    name = check_text(name, "name")
    sup = _may_subscribe(conn, email, key, resubscribe=resubscribe)
    sid = ensure_subscriber(conn, email, key, now, name, attrs)
    status = conn.execute(
        select(memberships.c.status).where(
            memberships.c.subscriber_id == sid, memberships.c.list_id == ml.id
        )
    ).scalar_one_or_none()
    if status == "unsubscribed" and not resubscribe:
        raise StoreError(
            f"{email} unsubscribed from {ml.name!r}",
            hint="pass --resubscribe only if they asked to subscribe again",
        )
    history = []
    if sup == "unsubscribed":
        conn.execute(delete(suppressions).where(suppressions.c.email_key == key))
        history.append(dict(email_key=key, list_name=None, status="resubscribed",
                            source=source, changed_at=now))
    if status == "subscribed":
        record_history(conn, history)
        return "resubscribed" if history else "unchanged"
    if status is None:
        conn.execute(memberships.insert().values(
            subscriber_id=sid, list_id=ml.id, status="subscribed", changed_at=now))
    else:
        conn.execute(
            update(memberships)
            .where(memberships.c.subscriber_id == sid, memberships.c.list_id == ml.id)
            .values(status="subscribed", changed_at=now)
        )
    history.append(dict(email_key=key, list_name=ml.name, status="subscribed",
                        source=source, changed_at=now))
    record_history(conn, history)
    from pbtp_mailer.store.signups import record_consent

    record_consent(conn, key=key, list_name=ml.name, now=now,
                   how="admin" if source == "cli" else source)
    return "added" if status is None else "resubscribed"


def remove_subscriber(conn: Connection, list_name: str, raw_email: str, now: datetime,
                      source: str = "cli") -> None:
    """Delete the membership (an administrative removal, not an unsubscribe)."""
    ml = get_list(conn, list_name)
    key = email_key(raw_email)
    sid = conn.execute(
        select(subscribers.c.id).where(subscribers.c.email_key == key)
    ).scalar_one_or_none()
    gone = 0
    if sid is not None:
        gone = conn.execute(
            delete(memberships).where(
                memberships.c.subscriber_id == sid, memberships.c.list_id == ml.id
            )
        ).rowcount
    if not gone:
        raise StoreError(f"{raw_email.strip()} is not on list {ml.name!r}")
    record_history(conn, [dict(email_key=key, list_name=ml.name, status="removed",
                               source=source, changed_at=now)])


def subscriber_details(conn: Connection, raw_email: str) -> SubscriberDetails:
    key = email_key(raw_email)
    row = conn.execute(select(subscribers).where(subscribers.c.email_key == key)).first()
    sup = conn.execute(select(suppressions).where(suppressions.c.email_key == key)).first()
    hist = conn.execute(
        select(status_history)
        .where(status_history.c.email_key == key)
        .order_by(status_history.c.id)
    ).all()
    if row is None and sup is None and not hist:
        raise StoreError(f"no subscriber {raw_email.strip()}")
    mems: list[tuple[str, str, datetime]] = []
    if row is not None:
        q = (
            select(lists.c.name, memberships.c.status, memberships.c.changed_at)
            .join(lists, lists.c.id == memberships.c.list_id)
            .where(memberships.c.subscriber_id == row.id)
            .order_by(lists.c.name)
        )
        for r in conn.execute(q):
            if sup is not None:
                mems.append((r.name, sup.reason, sup.created_at))
            else:
                mems.append((r.name, r.status, r.changed_at))
    return SubscriberDetails(
        email=row.email if row is not None else key,
        name=row.name if row is not None else None,
        attrs=dict(row.attrs or {}) if row is not None else {},
        memberships=mems,
        suppression=(sup.reason, sup.created_at) if sup is not None else None,
        history=[HistoryEntry(h.changed_at, h.list_name, h.status, h.source, h.detail or "")
                 for h in hist],
    )
