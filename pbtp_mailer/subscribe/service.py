"""Sign-up, confirmation and preferences as a library: what the pages (and Python) call.

``Subscriptions`` never says whether an address is known: ``sign_up``
returns nothing, and whether a confirmation mail, an "already subscribed"
mail or no mail at all (over the daily limit) went out is only visible in
the reader's inbox. Leaving a list on the preference page is immediate;
joining one always goes through a confirmation mail (proof of ownership).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pbtp_mailer.errors import LinkError, TokenError, UnknownListError
from pbtp_mailer.store.subscribers import check_text, normalize_email
from pbtp_mailer.subscribe.settings import site_url
from pbtp_mailer.subscribe.tokens import make_confirm_token, read_confirm_token
from pbtp_mailer.tokens import make_token, read_token

if TYPE_CHECKING:
    from pbtp_mailer.config import Config
    from pbtp_mailer.store import MailingList, Store
    from pbtp_mailer.store.signups import ListStatus, Pending
    from pbtp_mailer.subscribe.mail import Mailer
    from pbtp_mailer.subscribe.settings import SubscribeSettings

__all__ = ["Subscriptions", "Visitor", "Preferences"]


@dataclass(frozen=True)
class Visitor:
    """Who sent a request; kept in consent records only with ``record_ip``."""

    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class Preferences:
    email: str
    name: str | None
    lists: list[ListStatus]
    left: list[str] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Subscriptions:
    def __init__(self, store: Store, config: Config, settings: SubscribeSettings,
                 mailer: Mailer, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.store = store
        self.signups = store.signups
        self.config = config
        self.settings = settings
        self.secret = config.secret()
        self.mailer = mailer
        self.clock = clock

    # -- sign-up --------------------------------------------------------------

    def public_list(self, name: str) -> MailingList:
        ml = self.signups.public_list(name)
        if ml is None:
            raise UnknownListError(f"no public list {name!r}")
        return ml

    def sign_up(self, list_name: str, email: str, name: str | None = None, *,
                visitor: Visitor = Visitor(), how: str = "form") -> None:
        """Mail a confirmation link (or an "already subscribed" note) to ``email``.

        ``UnknownListError`` for an unknown or private list; ``InvalidAddress``
        for an address that cannot be stored. Anything else is silent.
        """
        ml = self.public_list(list_name)
        address = normalize_email(email)[0]
        name = check_text(name, "name")
        _, statuses = self.signups.statuses(address)
        current = next((s.status for s in statuses if s.list.id == ml.id), "none")
        if current == "subscribed":
            if self.signups.take_mail_slot(address, "already", self.settings.per_address_per_day):
                self.mailer.send(address, "already", list=ml,
                                 manage_url=self.manage_url(address, ml))
            return
        self._ask(address, name, [ml], how=how, visitor=visitor)

    def _ask(self, address: str, name: str | None, wanted: Iterable[MailingList], *,
             how: str, visitor: Visitor) -> bool:
        """One confirmation mail with a link per list (if the daily limit allows)."""
        wanted = list(wanted)
        if not self.signups.take_mail_slot(address, "confirm", self.settings.per_address_per_day):
            return False
        record = self.settings.record_ip
        wording = self.signups.wording(self.settings.consent_text)
        ttl = timedelta(days=self.settings.confirm_days)
        links = []
        for ml in wanted:
            p = self.signups.request(address, ml, how=how, ttl=ttl, name=name, wording_id=wording,
                                     ip=visitor.ip if record else None,
                                     user_agent=visitor.user_agent if record else None)
            token = make_confirm_token(self.secret, p.id, ml.id, p.expires_at)
            links.append((ml, site_url(self.config, "confirm", token)))
        return self.mailer.send(address, "confirm", links=links, days=self.settings.confirm_days,
                                consent_text=self.settings.consent_text)

    def manage_url(self, address: str, ml: MailingList) -> str:
        sid = self.signups.subscriber_id(address)
        assert sid is not None
        return site_url(self.config, "preferences", make_token(self.secret, sid, ml.id))

    # -- confirmation ---------------------------------------------------------

    def pending(self, token: str) -> Pending:
        """The sign-up a confirmation token stands for; ``LinkError`` (404/410) otherwise."""
        try:
            t = read_confirm_token(self.secret, token)
        except TokenError:
            raise LinkError("this confirmation link is not valid", status=404) from None
        p = self.signups.pending(t.request_id)
        if p is None or p.list.id != t.list_id:
            raise LinkError("this confirmation link is not valid", status=404)
        if p.used_at is not None:
            raise LinkError("this confirmation link was already used", status=410)
        if min(t.expires, p.expires_at) <= self.clock():
            raise LinkError("this confirmation link has expired", status=410)
        return p

    def confirm(self, token: str) -> Pending:
        p = self.pending(token)
        if not self.signups.confirm(p.id):
            raise LinkError("this confirmation link was already used", status=410)
        if self.settings.welcome:
            self.mailer.send(p.email, "welcome", list=p.list,
                             manage_url=self.manage_url(p.email, p.list))
        return p

    # -- preferences ----------------------------------------------------------

    def _member(self, token: str) -> tuple[str, MailingList]:
        try:
            sid, lid = read_token(self.secret, token)
        except TokenError:
            raise LinkError("this link is not valid", status=404) from None
        found = self.store.member(sid, lid)
        if found is None:
            raise LinkError("this link is not valid", status=404)
        return found

    def preferences(self, token: str) -> Preferences:
        email, _ = self._member(token)
        name, lists = self.signups.statuses(email)
        return Preferences(email, name, lists)

    def update(self, token: str, wanted: set[str], name: str | None, *,
               visitor: Visitor = Visitor()) -> Preferences:
        """Leave the unticked lists now; mail one confirmation for the newly ticked ones."""
        email, _ = self._member(token)
        current_name, lists = self.signups.statuses(email)
        name = check_text(name, "name")
        if name != current_name:  # an emptied field clears the name
            self.signups.set_name(email, name)
        left, join = [], []
        for s in lists:
            if s.status == "subscribed" and s.list.name not in wanted:
                self.store.suppress(email, "unsubscribed", list_id=s.list.id,
                                    source="preferences")
                left.append(s.list.name)
            elif s.status != "subscribed" and s.list.name in wanted:
                join.append(s.list)
        if join:
            self._ask(email, name, join, how="preferences", visitor=visitor)
        name, lists = self.signups.statuses(email)
        return Preferences(email, name, lists, left, [ml.name for ml in join])
