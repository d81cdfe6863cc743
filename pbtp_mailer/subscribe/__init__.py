"""Readers serve themselves: double opt-in sign-up, a preference page, consent records.

- ``settings``: ``[subscribe]`` and ``[web] base_url``;
- ``tokens``: signed, expiring confirmation tokens and CSRF form tokens;
- ``service``: ``Subscriptions`` (sign up, confirm, preferences) as a library;
- ``mail``: the confirm / already-subscribed / welcome mails from the layout;
- ``web``: the ``/subscribe``, ``/confirm`` and ``/preferences`` pages for ``serve``;
- ``snippet``: the HTML form that ``lists form`` prints for a website.

The data lives in ``store/`` (``signups``, ``erasure``); GDPR export and
erase are ``Store.export_address`` and ``Store.erase_address``.
"""

from typing import TYPE_CHECKING, Any

from pbtp_mailer.subscribe.settings import SubscribeSettings, WebSettings, site_base, site_url

if TYPE_CHECKING:
    from pbtp_mailer.subscribe.service import Preferences, Subscriptions, Visitor


def __getattr__(name: str) -> Any:
    # the service pulls in the store (SQLAlchemy): loaded on first use, so that
    # `build`, which only needs site_url for the footer link, stays fast
    if name in ("Preferences", "Subscriptions", "Visitor"):
        from pbtp_mailer.subscribe import service

        return getattr(service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["Subscriptions", "Visitor", "Preferences", "SubscribeSettings", "WebSettings",
           "site_base", "site_url"]
