"""The public web site ``pbtp-mailer serve`` runs (waitress, WSGI).

- ``app``: the router; every feature mounts its pages there (``site_mounts``);
- ``unsubscribe``: RFC 8058 one-click unsubscribe at ``/u/TOKEN``;
- ``subscribe.web`` mounts ``/subscribe``, ``/confirm`` and ``/preferences``.
"""

from pbtp_mailer.web.app import make_site, site_mounts

__all__ = ["make_site", "site_mounts"]
