"""The pages of sign-up, confirmation and preferences, as one WSGI app.

    GET  /subscribe/LIST        the form (``?email=`` pre-fills it: the snippet of
                                ``lists form`` is a GET form, so no cross-site POST)
    POST /subscribe/LIST        "check your inbox", whatever the address is
    GET  /confirm/TOKEN         a page with a Confirm button; changes nothing
    POST /confirm/TOKEN         subscribes
    GET  /preferences/TOKEN     the public lists with the reader's status, and their name
    POST /preferences/TOKEN     leave now, join by confirmation mail

Every POST needs the signed form token of its own page (403 otherwise, and
403 for a browser that says the request is cross-site); bodies are capped at
``MAX_BODY``; POSTs per IP are limited (429). Unknown or private lists and
unusable links get a 4xx page and change nothing. Pages are templates of
the layout (``pages/*.html.j2``), sent with ``SECURITY_HEADERS``. Nothing
is logged: addresses are personal data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy.exc import SQLAlchemyError

from pbtp_mailer.errors import LinkError, StoreError, UnknownListError
from pbtp_mailer.store.subscribers import InvalidAddress
from pbtp_mailer.subscribe.ratelimit import IPLimiter
from pbtp_mailer.subscribe.service import Subscriptions, Visitor
from pbtp_mailer.subscribe.tokens import check_form_token, make_form_token
from pbtp_mailer.web.pages import SECURITY_HEADERS, PageRenderer

if TYPE_CHECKING:
    from pbtp_mailer.config import Config
    from pbtp_mailer.store import Store
    from pbtp_mailer.web.app import StartResponse, WSGIApp

__all__ = ["SubscribePages", "MAX_BODY", "HONEYPOT"]

MAX_BODY = 8 * 1024
HONEYPOT = "website"  # hidden from people; bots fill every field
_STATUS = {200: "200 OK", 400: "400 Bad Request", 403: "403 Forbidden", 404: "404 Not Found",
           405: "405 Method Not Allowed", 410: "410 Gone", 413: "413 Content Too Large",
           429: "429 Too Many Requests", 503: "503 Service Unavailable"}


class _Reply(Exception):
    """Answer now with this status and page (raised from deep inside a handler)."""

    def __init__(self, status: int, page: str, values: dict[str, Any]) -> None:
        super().__init__(status)
        self.status, self.page, self.values = status, page, values


def _message(status: int, title: str, text: str) -> _Reply:
    return _Reply(status, "message", {"title": title, "text": text})


class SubscribePages:
    """``subscribe``, ``confirm`` and ``preferences`` apps over one ``Subscriptions``."""

    def __init__(self, service: Subscriptions, renderer: PageRenderer, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.service = service
        self.pages = renderer
        self.secret = service.secret
        self.limiter = IPLimiter(service.settings.per_ip_per_hour)
        self.clock = clock

    def mounts(self) -> dict[str, WSGIApp]:
        return {"subscribe": self._app(self.subscribe), "confirm": self._app(self.confirm),
                "preferences": self._app(self.preferences)}

    # -- plumbing -------------------------------------------------------------

    def _app(self, handler: Callable[[str, str, dict[str, Any]], tuple[int, str, dict[str, Any]]],
             ) -> WSGIApp:
        def app(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
            method = environ.get("REQUEST_METHOD", "GET").upper()
            raw = environ.get("PATH_INFO", "")
            try:
                arg = raw.rpartition("/")[2].encode("latin-1").decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                arg = ""
            try:
                if method not in ("GET", "HEAD", "POST"):
                    raise _message(405, "Not allowed", "This address takes GET and POST only.")
                status, page, values = handler(method, arg, environ)
            except _Reply as r:
                status, page, values = r.status, r.page, r.values
            except (StoreError, SQLAlchemyError):
                status, page, values = 503, "message", {
                    "title": "Please try again later",
                    "text": "The service is busy or down. Nothing was changed."}
            body = self.pages.render(page, **values)
            headers = [("Content-Type", "text/html; charset=utf-8"),
                       ("Content-Length", str(len(body))), *SECURITY_HEADERS]
            if status == 405:
                headers.append(("Allow", "GET, HEAD, POST"))
            start(_STATUS[status], headers)
            return [] if method == "HEAD" else [body]

        return app

    def _form(self, environ: dict[str, Any], scope: str) -> dict[str, str]:
        """The POSTed fields, after the cross-site, size and form-token checks."""
        if environ.get("HTTP_SEC_FETCH_SITE", "") == "cross-site" or not self._same_origin(environ):
            raise _message(403, "Not allowed", "This form can only be sent from its own page.")
        ip = environ.get("REMOTE_ADDR") or "?"
        if not self.limiter.allow(ip):
            raise _message(429, "Too many requests", "Please wait an hour and try again.")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0:
            raise _message(400, "Bad request", "Nothing was changed.")
        if length > MAX_BODY:
            raise _message(413, "Too large", "That was more than this form takes.")
        ctype = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        body = environ["wsgi.input"].read(length) if length else b""
        if ctype != "application/x-www-form-urlencoded":
            raise _message(400, "Bad request", "Nothing was changed.")
        try:
            parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
        except (UnicodeDecodeError, ValueError):
            raise _message(400, "Bad request", "Nothing was changed.") from None
        if not check_form_token(self.secret, scope, (parsed.get("form_token") or [""])[0],
                                self.clock()):
            raise _message(403, "This form has expired",
                           "Nothing was changed. Go back, reload the page and send it again.")
        fields = {k: v[0] for k, v in parsed.items() if k != "list"}
        fields["list"] = "\0".join(parsed.get("list", []))
        return fields

    @staticmethod
    def _same_origin(environ: dict[str, Any]) -> bool:
        origin = environ.get("HTTP_ORIGIN")
        if not origin or origin == "null":  # no-referrer pages make browsers send "null"
            return True
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
        return urlsplit(origin).netloc.lower() == host.lower()

    def _visitor(self, environ: dict[str, Any]) -> Visitor:
        return Visitor(ip=environ.get("REMOTE_ADDR"),
                       user_agent=(environ.get("HTTP_USER_AGENT") or "")[:300] or None)

    def _token(self, scope: str) -> str:
        return make_form_token(self.secret, scope, self.clock())

    # -- pages ----------------------------------------------------------------

    def subscribe(self, method: str, name: str,
                  environ: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
        try:
            ml = self.service.public_list(name)
        except UnknownListError:
            raise _message(404, "No such list", "There is no public list at this address.") \
                from None
        scope = f"subscribe:{ml.name}"
        values: dict[str, Any] = {"list": ml, "consent_text": self.service.settings.consent_text,
                                  "form_token": self._token(scope), "error": None,
                                  "email": "", "person": "", "honeypot": HONEYPOT}
        if method != "POST":
            query = parse_qs(environ.get("QUERY_STRING", ""), max_num_fields=5)
            values["email"] = (query.get("email") or [""])[0][:320]
            return 200, "subscribe", values
        form = self._form(environ, scope)
        email, person = form.get("email", "")[:320], form.get("name", "")[:200]
        if form.get(HONEYPOT):  # a bot: the same answer as everyone, and no mail
            return 200, "subscribe_sent", {"list": ml}
        try:
            self.service.sign_up(ml.name, email, person or None, visitor=self._visitor(environ))
        except InvalidAddress as exc:
            values.update(email=email, person=person, error=str(exc))
            return 400, "subscribe", values
        return 200, "subscribe_sent", {"list": ml}

    def confirm(self, method: str, token: str,
                environ: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
        scope = f"confirm:{token}"
        try:
            if method != "POST":
                p = self.service.pending(token)
                return 200, "confirm", {"list": p.list, "form_token": self._token(scope)}
            self._form(environ, scope)
            p = self.service.confirm(token)
        except LinkError as exc:
            raise _message(exc.status, "This link cannot be used",
                           f"{str(exc).capitalize()}. Nothing was changed. You can sign up "
                           "again from the newsletter's website.") from None
        return 200, "confirmed", {"list": p.list}

    def preferences(self, method: str, token: str,
                    environ: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
        scope = f"preferences:{token}"
        try:
            if method != "POST":
                prefs = self.service.preferences(token)
            else:
                form = self._form(environ, scope)
                wanted = {n for n in form.get("list", "").split("\0") if n}
                prefs = self.service.update(token, wanted, form.get("name", "")[:200] or None,
                                            visitor=self._visitor(environ))
        except LinkError as exc:
            raise _message(exc.status, "This link cannot be used",
                           f"{str(exc).capitalize()}. Nothing was changed.") from None
        except InvalidAddress as exc:
            raise _message(400, "Bad request", f"{exc}. Nothing was changed.") from None
        return 200, "preferences", {"prefs": prefs, "form_token": self._token(scope),
                                    "saved": method == "POST"}


def make_pages(store: Store, config: Config) -> SubscribePages:
    """The pages for ``serve``, from the config's ``[web]`` and ``[subscribe]`` tables."""
    from pbtp_mailer.subscribe.mail import Mailer
    from pbtp_mailer.subscribe.settings import SubscribeSettings, WebSettings, site_base

    settings = config.section("subscribe", SubscribeSettings)
    web = config.section("web", WebSettings)
    nl = config.newsletter
    common = {"language": nl.language, "direction": nl.direction, "site": nl.name,
              "base_url": site_base(config), "postal_address": nl.postal_address}
    renderer = PageRenderer(config.base_dir, web.layout, common=common)
    mailer = Mailer(config, settings.sender, web.layout, common=common)
    return SubscribePages(Subscriptions(store, config, settings, mailer), renderer)
