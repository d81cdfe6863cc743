"""The public web site ``pbtp-mailer serve`` runs (waitress, WSGI).

- ``app``: the router; every feature mounts its pages there (``site_mounts``);
- ``unsubscribe``: RFC 8058 one-click unsubscribe at ``/u/TOKEN``;
- ``subscribe.web`` mounts ``/subscribe``, ``/confirm`` and ``/preferences``.
- ``server``: the waitress limits ``serve`` runs with.
"""

from pbtp_mailer.web.app import make_site, site_mounts
from pbtp_mailer.web.server import SERVER_LIMITS, server_options

__all__ = ["make_site", "site_mounts", "SERVER_LIMITS", "server_options"]
