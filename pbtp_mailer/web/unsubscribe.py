"""The one-click unsubscribe endpoint (RFC 8058) as a plain WSGI app.

    POST /u/TOKEN   body ``List-Unsubscribe=One-Click`` (urlencoded or
                    multipart/form-data): unsubscribe, answer 200. No
                    redirect, no cookie, no login, no confirmation step;
                    repeating it changes nothing and still answers 200.
    GET  /u/TOKEN   a small page naming the list with one button that POSTs
                    the same form. A GET never unsubscribes: link scanners
                    and mail-security proxies prefetch every URL in a message.

The probe token (``tokens.make_probe_token``, used by ``pbtp-mailer doctor``)
answers a one-click POST with 200 and touches nothing.

The pages are the layout's templates (``web/pages.py``), so a program
restyles them by overriding ``layouts/default/pages/*.html.j2``.

A forged, truncated or unknown token gets 404 and changes nothing; a POST
with any other body gets 400. The path may carry a prefix (``/pbtp/u/TOKEN``)
so the app works behind a reverse proxy that does not strip it. Nothing is
logged: the address is personal data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from sqlalchemy.exc import SQLAlchemyError

from pbtp_mailer.errors import StoreError, TokenError
from pbtp_mailer.tokens import PROBE_IDS, read_token
from pbtp_mailer.web.pages import SECURITY_HEADERS, PageRenderer

if TYPE_CHECKING:
    from pbtp_mailer.config import Newsletter
    from pbtp_mailer.store import Store

__all__ = ["make_app", "is_one_click_body", "MAX_BODY"]

MAX_BODY = 64 * 1024
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_STATUS = {200: "200 OK", 400: "400 Bad Request", 404: "404 Not Found",
           405: "405 Method Not Allowed", 413: "413 Content Too Large",
           503: "503 Service Unavailable"}
#: (title, heading, detail) of the short error pages (``pages/error.html.j2``)
_ERRORS = {
    400: ("Bad request", "Bad request",
          "Expected the form List-Unsubscribe=One-Click. Nothing was changed."),
    405: ("Not allowed", "Method not allowed", ""),
    413: ("Too large", "Request too large", ""),
    503: ("Try again later", "Please try again later", ""),
}


def is_one_click_body(content_type: str, body: bytes) -> bool:
    """Whether ``body`` is the RFC 8058 form ``List-Unsubscribe=One-Click``."""
    header = Message()
    header["Content-Type"] = content_type or "text/plain"
    kind = header.get_content_type()
    if kind == "application/x-www-form-urlencoded":
        try:
            fields = parse_qs(body.decode("ascii"), keep_blank_values=True,
                              max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            return False
        return [v.strip() for v in fields.get("List-Unsubscribe", [])] == ["One-Click"]
    if kind == "multipart/form-data":
        boundary = header.get_param("boundary")
        if not isinstance(boundary, str) or not boundary:
            return False
        doc = (b"MIME-Version: 1.0\r\nContent-Type: " + content_type.encode("latin-1", "replace")
               + b"\r\n\r\n" + body)
        msg = BytesParser(policy=policy.HTTP).parsebytes(doc)
        if not msg.is_multipart():
            return False
        values = []
        for part in msg.iter_parts():
            if part.get_param("name", header="content-disposition") == "List-Unsubscribe":
                payload = part.get_payload(decode=True)
                values.append(payload.strip() if isinstance(payload, bytes) else b"")
        return values == [b"One-Click"]
    return False


def _mask(email: str) -> str:
    local, _, domain = email.rpartition("@")
    return f"{local[:1]}{'*' * min(max(len(local) - 1, 1), 5)}@{domain}"


def make_app(store: Store, secret: bytes, newsletter: Newsletter, *,
             pages: PageRenderer | None = None) -> WSGIApp:
    """The WSGI app for ``/u/TOKEN`` (see the module docstring).

    Pages come from ``pages`` (default: the shipped layout's templates
    ``unsubscribe``, ``unsubscribed``, ``unsubscribe_invalid``, ``error``).
    """
    return _Unsubscribe(store, secret, pages or PageRenderer.for_newsletter(None, newsletter))


class _Unsubscribe:
    """The app itself: a token from the path, then the GET page or the POST."""

    def __init__(self, store: Store, secret: bytes, pages: PageRenderer) -> None:
        self.store, self.secret, self.pages = store, secret, pages

    def __call__(self, environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        head = method == "HEAD"
        _, sep, token = environ.get("PATH_INFO", "").rpartition("/u/")
        if not sep or "/" in token:
            return self._not_found(start, head)
        try:
            sid, lid = read_token(self.secret, token)
            if (sid, lid) == PROBE_IDS and method == "POST":
                return self._probe(environ, start)
            found = self.store.member(sid, lid)
        except TokenError:
            return self._not_found(start, head)
        except (StoreError, SQLAlchemyError):
            return self._error(start, 503)
        if found is None:
            return self._not_found(start, head)
        email, ml = found
        who = {"list_name": ml.name, "masked_email": _mask(email)}
        if method in ("GET", "HEAD"):
            try:
                already = self.store.is_suppressed(email, ml.id)
            except (StoreError, SQLAlchemyError):
                already = False
            page = self.pages.render("unsubscribed" if already else "unsubscribe",
                                     already=already, **who)
            return self._respond(start, 200, page, head=head)
        if method != "POST":
            return self._error(start, 405, extra=[("Allow", "GET, HEAD, POST")])
        return self._post(environ, start, sid, lid, who)

    def _post(self, environ: dict[str, Any], start: StartResponse, sid: int, lid: int,
              who: dict[str, str]) -> list[bytes]:
        """RFC 8058: the one-click form, and only it, unsubscribes."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0:
            return self._error(start, 400)
        if length > MAX_BODY:
            return self._error(start, 413)
        body = environ["wsgi.input"].read(length) if length else b""
        if not is_one_click_body(environ.get("CONTENT_TYPE", ""), body):
            return self._error(start, 400)
        try:
            self.store.unsubscribe_member(sid, lid, source="one-click")
        except (StoreError, SQLAlchemyError):
            return self._error(start, 503)
        return self._respond(start, 200, self.pages.render("unsubscribed", already=False, **who))

    def _probe(self, environ: dict[str, Any], start: StartResponse) -> list[bytes]:
        """``doctor``'s probe: a one-click POST answered like a real one, touching nothing."""
        size = str(environ.get("CONTENT_LENGTH") or "0")
        body = environ["wsgi.input"].read(min(int(size), MAX_BODY) if size.isdigit() else 0)
        if not is_one_click_body(environ.get("CONTENT_TYPE", ""), body):
            return self._error(start, 400)
        page = self.pages.render("error", title="Probe", heading="Probe",
                                 detail="This address answers one-click unsubscribe requests.")
        return self._respond(start, 200, page)

    def _respond(self, start: StartResponse, code: int, body: bytes, *, head: bool = False,
                 extra: list[tuple[str, str]] | None = None) -> list[bytes]:
        headers = [("Content-Type", "text/html; charset=utf-8"),
                   ("Content-Length", str(len(body))), *SECURITY_HEADERS, *(extra or [])]
        start(_STATUS[code], headers)
        return [] if head else [body]

    def _error(self, start: StartResponse, code: int, **kw: Any) -> list[bytes]:
        title, heading, detail = _ERRORS[code]
        body = self.pages.render("error", title=title, heading=heading, detail=detail)
        return self._respond(start, code, body, **kw)

    def _not_found(self, start: StartResponse, head: bool = False) -> list[bytes]:
        return self._respond(start, 404, self.pages.render("unsubscribe_invalid"), head=head)
