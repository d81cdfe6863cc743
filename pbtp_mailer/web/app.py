"""The public site that ``pbtp-mailer serve`` runs: one WSGI app, one mount per feature.

A request goes to the first path segment that names a mount, so the site
works behind a reverse proxy that keeps a prefix (``/pbtp/u/TOKEN``). Each
feature contributes its own WSGI app; the mounts are listed in ``site_mounts``.
Anything else is a plain 404.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pbtp_mailer.config import Config
    from pbtp_mailer.store import Store

__all__ = ["WSGIApp", "StartResponse", "make_site", "site_mounts"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _not_found(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
    body = b"Not found\n"
    start("404 Not Found", [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(body))), ("Cache-Control", "no-store"),
                            ("X-Content-Type-Options", "nosniff")])
    return [] if environ.get("REQUEST_METHOD", "GET").upper() == "HEAD" else [body]


def make_site(mounts: Mapping[str, WSGIApp]) -> WSGIApp:
    """Route each request to the mount named by its first matching path segment."""

    def site(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        segments = environ.get("PATH_INFO", "").split("/")
        # the last segment is the mount's argument (a token, a list name): never a mount name
        for segment in segments[:-1]:
            app = mounts.get(segment)
            if app is not None:
                return app(environ, start)
        return _not_found(environ, start)

    return site


def site_mounts(store: Store, config: Config) -> dict[str, WSGIApp]:
    """Every public page of the tool, by the path segment it lives under."""
    from pbtp_mailer.feedback.settings import load_settings
    from pbtp_mailer.feedback.webhooks import make_app as feedback_app
    from pbtp_mailer.web.pages import PageRenderer
    from pbtp_mailer.web.unsubscribe import make_app as unsubscribe_app

    secret = config.secret()
    from pbtp_mailer.subscribe.web import make_pages

    pages = PageRenderer.for_newsletter(config.base_dir, config.newsletter)
    return {
        "u": unsubscribe_app(store, secret, config.newsletter, pages=pages),
        **make_pages(store, config).mounts(),
        "feedback": feedback_app(store, load_settings(config), config.environ),
    }
