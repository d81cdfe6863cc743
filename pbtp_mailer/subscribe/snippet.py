"""The HTML form ``pbtp-mailer lists form NAME`` prints for the program's website.

It is a GET form: it only opens the sign-up page with the address filled in,
where the reader presses Subscribe. So the website never POSTs to us
cross-site, needs no token that could go stale in a static page, and the
consent wording is always the one the sign-up page shows (and records).
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from pbtp_mailer.errors import UnknownListError
from pbtp_mailer.subscribe.settings import site_url

if TYPE_CHECKING:
    from pbtp_mailer.config import Config
    from pbtp_mailer.store import Store

__all__ = ["form_snippet"]


def form_snippet(store: Store, config: Config, list_name: str) -> str:
    ml = store.get_list(list_name)
    if not store.signups.is_public(ml.id):
        raise UnknownListError(f"list {ml.name!r} is not public: its sign-up page answers 404",
                               hint=f"pbtp-mailer lists set {ml.name} --public")
    action = escape(site_url(config, "subscribe", ml.name))
    name = escape(ml.name)
    return (f'<form method="get" action="{action}" class="pbtp-subscribe">\n'
            f'  <label for="pbtp-email">E-mail address</label>\n'
            f'  <input type="email" id="pbtp-email" name="email" required autocomplete="email">\n'
            f'  <button type="submit">Subscribe to {name}</button>\n'
            f"</form>\n")
