"""The subscriber store: one facade over lists, subscribers and suppressions.

``Store.open(config)`` (or ``Store(engine)``) migrates the database and
offers the calls the CLI, the unsubscribe server and the dispatcher need.
Dispatch state (the ledger's tables: dispatches, deliveries, runners,
rate_usage, schedule_seen) is reached only through ``Store.ledger(clock)``,
which hands out the ``Ledger``: the dispatcher, cron, ``status`` and
``archive`` receive it and never write SQL against those tables.

Every write runs in one transaction: nothing is ever half applied.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sqlalchemy import Engine, MetaData, select

from pbtp_mailer.errors import StoreError
from pbtp_mailer.store import subscribers as _subs
from pbtp_mailer.store import suppression as _sup
from pbtp_mailer.store.db import open_engine, write_transaction
from pbtp_mailer.store.migrations import migrate
from pbtp_mailer.store.schema import memberships, metadata, subscribers, suppressions
from pbtp_mailer.store.subscribers import (
    InvalidAddress,
    ListCounts,
    MailingList,
    Recipient,
    SubscriberDetails,
    normalize_email,
)

if TYPE_CHECKING:
    from pbtp_mailer.config import Config
    from pbtp_mailer.store.csvimport import ImportReport
    from pbtp_mailer.store.feedback import FeedbackLog
    from pbtp_mailer.store.ledger import Ledger
    from pbtp_mailer.store.signups import SignupStore
    from pbtp_mailer.store.suppression import SuppressReport

__all__ = [
    "Store",
    "MailingList",
    "Recipient",
    "ListCounts",
    "SubscriberDetails",
    "InvalidAddress",
    "normalize_email",
]

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Store:
    """Lists, subscribers and suppressions in one SQL database."""

    def __init__(self, engine: Engine, *, clock: Clock = _utcnow, owns_engine: bool = False,
                 run_migrations: bool = True) -> None:
        self.engine = engine
        self.metadata: MetaData = metadata
        self.clock = clock
        self._owns_engine = owns_engine
        if run_migrations:
            try:
                migrate(engine)
            except BaseException:
                if owns_engine:
                    engine.dispose()
                raise

    @classmethod
    def open(cls, config: Config, *, clock: Clock = _utcnow) -> Store:
        """Open (and migrate) the database named by the config."""
        return cls(open_engine(config.database_url), clock=clock, owns_engine=True)

    @classmethod
    def existing(cls, config: Config, *, clock: Clock = _utcnow) -> Store | None:
        """The configured database as it is (never created, never migrated), for readers
        such as ``archive``; None when a SQLite file does not exist yet."""
        from sqlalchemy.engine import make_url

        url = config.database_url
        if url.startswith("sqlite"):
            db = make_url(url).database
            if not db or db == ":memory:" or not Path(db).expanduser().is_file():
                return None
        return cls(open_engine(url), clock=clock, owns_engine=True, run_migrations=False)

    @classmethod
    def from_url(cls, url: str, *, clock: Clock = _utcnow) -> Store:
        return cls(open_engine(url), clock=clock, owns_engine=True)

    def close(self) -> None:
        if self._owns_engine:
            self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ledger(self, clock: Clock | None = None, *, message_id_domain: str = "") -> Ledger:
        """The delivery ledger on this database, the only door to dispatch state.

        ``clock`` stamps what it writes (default: the store's clock);
        ``message_id_domain`` is the right-hand side of the Message-IDs it
        assigns (only a dispatcher needs it).
        """
        from pbtp_mailer.store.ledger import Ledger

        return Ledger(self.engine, clock=clock or self.clock, message_id_domain=message_id_domain)

    # -- lists ---------------------------------------------------------------

    def get_list(self, name: str) -> MailingList:
        """The list called ``name``; ``UnknownListError`` names the known ones."""
        with self.engine.connect() as conn:
            return _subs.get_list(conn, name)

    def all_lists(self) -> list[MailingList]:
        with self.engine.connect() as conn:
            return _subs.all_lists(conn)

    def list_counts(self) -> list[ListCounts]:
        with self.engine.connect() as conn:
            return _subs.list_counts(conn)

    def create_list(self, name: str, description: str = "") -> MailingList:
        with write_transaction(self.engine) as conn:
            return _subs.create_list(conn, name, description, self.clock())

    def delete_list(self, name: str) -> int:
        with write_transaction(self.engine) as conn:
            return _subs.delete_list(conn, name)

    # -- subscribers ---------------------------------------------------------

    def add_subscriber(self, list_name: str, email: str, *, name: str | None = None,
                       attrs: Mapping[str, str] | None = None, resubscribe: bool = False,
                       source: str = "cli") -> str:
        try:
            with write_transaction(self.engine) as conn:
                return _subs.add_subscriber(conn, list_name, email, self.clock(), name=name,
                                            attrs=attrs, resubscribe=resubscribe, source=source)
        except InvalidAddress as exc:
            raise StoreError(str(exc)) from None

    def remove_subscriber(self, list_name: str, email: str) -> None:
        with write_transaction(self.engine) as conn:
            _subs.remove_subscriber(conn, list_name, email, self.clock())

    def subscriber(self, email: str) -> SubscriberDetails:
        with self.engine.connect() as conn:
            return _subs.subscriber_details(conn, email)

    def recipients(self, list_name: str, *, batch_size: int = 1000) -> Iterator[Recipient]:
        """Current subscribers of the list who are not suppressed, by subscriber id.

        Read in keyset-paginated batches, each in a short transaction, so a
        100k list never sits in memory and a long send never holds a read
        transaction open (suppressions made meanwhile are seen by later batches).
        An unknown list raises ``UnknownListError`` here, not at the first item.
        """
        return self._recipients(self.get_list(list_name), batch_size)

    def _recipients(self, ml: MailingList, batch_size: int) -> Iterator[Recipient]:
        last = 0
        full_page = True
        while full_page:  # each pass advances ``last``; a short page is the last one
            q = (
                select(subscribers.c.id, subscribers.c.email, subscribers.c.name,
                       subscribers.c.attrs)
                .join(memberships, memberships.c.subscriber_id == subscribers.c.id)
                .outerjoin(suppressions, suppressions.c.email_key == subscribers.c.email_key)
                .where(
                    memberships.c.list_id == ml.id,
                    memberships.c.status == "subscribed",
                    suppressions.c.email_key.is_(None),
                    subscribers.c.id > last,
                )
                .order_by(subscribers.c.id)
                .limit(batch_size)
            )
            with self.engine.connect() as conn:
                rows = conn.execute(q).all()
            for r in rows:
                yield Recipient(r.id, ml.id, r.email, r.name,
                                {str(k): str(v) for k, v in (r.attrs or {}).items()})
            full_page = len(rows) == batch_size
            if rows:
                last = rows[-1].id

    # -- suppression ---------------------------------------------------------

    def is_suppressed(self, email: str, list_id: int) -> bool:
        """Unsubscribed from this list or from all, bounced or complained (two index lookups)."""
        with self.engine.connect() as conn:
            return _sup.is_suppressed(conn, email, list_id)

    def suppressed_among(self, emails: Sequence[str], list_id: int) -> set[str]:
        with self.engine.connect() as conn:
            return _sup.suppressed_among(conn, emails, list_id)

    def suppress(self, email: str, reason: str, *, list_id: int | None = None,
                 source: str = "") -> bool:
        """Record an unsubscribe, bounce or complaint (idempotent); True if it changed anything."""
        with write_transaction(self.engine) as conn:
            return _sup.suppress(conn, email, reason, self.clock(), list_id=list_id,
                                 source=source)

    def unsuppress(self, email: str, *, reason: str, source: str = "cli") -> str:
        """Lift a bounce or complaint recorded in error; returns the reason lifted.

        The memberships were never changed by it, so the address gets the next
        issue of each list it is subscribed to. ``reason`` goes in the history.
        """
        with write_transaction(self.engine) as conn:
            return _sup.unsuppress(conn, email, self.clock(), detail=reason, source=source)

    def unsubscribe(self, email: str, list_name: str | None = None, *,
                    source: str = "cli") -> bool:
        """Unsubscribe from one list (by name) or, without a list, from all lists."""
        try:
            email = normalize_email(email)[0]
        except InvalidAddress as exc:
            raise StoreError(str(exc)) from None
        with write_transaction(self.engine) as conn:
            list_id = _subs.get_list(conn, list_name).id if list_name is not None else None
            return _sup.suppress(conn, email, "unsubscribed", self.clock(), list_id=list_id,
                                 source=source)

    def member(self, subscriber_id: int, list_id: int) -> tuple[str, MailingList] | None:
        """``(email, list)`` for a token's ids; None when the subscriber or the list is gone.

        The membership itself may be gone (``subscribers remove``): an
        unsubscribe is still honoured then, so a later import skips the address.
        """
        from pbtp_mailer.store.schema import lists

        q = (
            select(subscribers.c.email, lists.c.id, lists.c.name, lists.c.description)
            .select_from(subscribers.join(lists, lists.c.id == list_id))
            .where(subscribers.c.id == subscriber_id)
        )
        with self.engine.connect() as conn:
            r = conn.execute(q).first()
        if r is None:
            return None
        return r.email, MailingList(r.id, r.name, r.description or "")

    def unsubscribe_member(self, subscriber_id: int, list_id: int, *,
                           source: str) -> tuple[str, MailingList, bool] | None:
        """Unsubscribe a token's membership: ``(email, list, changed)``, None if unknown."""
        found = self.member(subscriber_id, list_id)
        if found is None:
            return None
        email, ml = found
        with write_transaction(self.engine) as conn:
            changed = _sup.suppress(conn, email, "unsubscribed", self.clock(), list_id=ml.id,
                                    source=source)
        return email, ml, changed

    def import_suppressions(self, path: str | Path, reason: str) -> SuppressReport:
        with write_transaction(self.engine) as conn:
            return _sup.import_suppressions(conn, Path(path), reason, self.clock())

    # -- self-service subscription and GDPR ------------------------------------

    @property
    def signups(self) -> SignupStore:
        """Public lists, pending sign-ups and consent records (``store/signups.py``)."""
        from pbtp_mailer.store.signups import SignupStore

        return SignupStore(self)

    def export_address(self, email: str) -> dict[str, Any] | None:
        """Everything held about ``email`` (JSON-ready), None when nothing is."""
        from pbtp_mailer.store.erasure import export_address

        return export_address(self, email)

    def erase_address(self, email: str) -> bool:
        """Delete everything about ``email``; ledger rows keep only a keyed hash."""
        from pbtp_mailer.store.erasure import erase_address

        return erase_address(self, email)

    # -- feedback (bounces, complaints) ---------------------------------------

    @functools.cached_property
    def feedback(self) -> FeedbackLog:
        """The feedback events (see ``store/feedback.py``); one per store (it caches statements)."""
        from pbtp_mailer.store.feedback import FeedbackLog

        return FeedbackLog(self.engine, clock=self.clock)

    # -- CSV -----------------------------------------------------------------

    def import_csv(self, list_name: str, path: str | Path, *, dry_run: bool = False,
                   strict: bool = False) -> ImportReport:
        from pbtp_mailer.store.csvimport import import_csv

        return import_csv(self, list_name, Path(path), dry_run=dry_run, strict=strict)

    def export_csv(self, list_name: str, out: IO[str], *, for_spreadsheet: bool = False) -> int:
        from pbtp_mailer.store.csvimport import export_csv

        return export_csv(self, list_name, out, for_spreadsheet=for_spreadsheet)
