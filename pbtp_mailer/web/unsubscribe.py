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
A forged, truncated or unknown token gets 404 and changes nothing; a POST
with any other body gets 400. The path may carry a prefix (``/pbtp/u/TOKEN``)
so the app works behind a reverse proxy that does not strip it. Nothing is
logged: the address is personal data.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from sqlalchemy.exc import SQLAlchemyError

from pbtp_mailer.errors import StoreError, TokenError
from pbtp_mailer.tokens import PROBE_IDS, read_token

if TYPE_CHECKING:
    from pbtp_mailer.config import Newsletter
    from pbtp_mailer.store import Store

__all__ = ["make_app", "is_one_click_body", "MAX_BODY"]

MAX_BODY = 64 * 1024
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_HEADERS = [
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Robots-Tag", "noindex"),
    ("Content-Security-Policy",
     "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
     "frame-ancestors 'none'; base-uri 'none'"),
]
_STATUS = {200: "200 OK", 400: "400 Bad Request", 404: "404 Not Found",
           405: "405 Method Not Allowed", 413: "413 Content Too Large",
           503: "503 Service Unavailable"}
_STYLE = ("body{font:1.1rem/1.5 system-ui,sans-serif;margin:0;padding:2rem 1rem;"
          "color:#1a1a1a;background:#fff}main{max-width:32rem;margin:auto}"
          "button{font:inherit;padding:.6rem 1.2rem;border:2px solid #1a1a1a;"
          "border-radius:.3rem;background:#1a1a1a;color:#fff;cursor:pointer}"
          "button:focus{outline:3px solid #0b5fff;outline-offset:2px}")


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


def make_app(store: Store, secret: bytes, newsletter: Newsletter) -> WSGIApp:
    """The WSGI app for ``/u/TOKEN`` (see the module docstring)."""
    lang = html.escape(newsletter.language)
    direction = html.escape(newsletter.direction)
    site = html.escape(newsletter.name)

    def page(title: str, body: str) -> bytes:
        return (
            f'<!doctype html>\n<html lang="{lang}" dir="{direction}">\n<head>\n'
            '<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)} – {site}</title>\n<style>{_STYLE}</style>\n"
            f"</head>\n<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
        ).encode()

    def respond(start: StartResponse, code: int, body: bytes, *, head: bool = False,
                extra: list[tuple[str, str]] | None = None) -> list[bytes]:
        headers = [("Content-Type", "text/html; charset=utf-8"),
                   ("Content-Length", str(len(body))), *_HEADERS, *(extra or [])]
        start(_STATUS[code], headers)
        return [] if head else [body]

    def not_found(start: StartResponse, head: bool = False) -> list[bytes]:
        return respond(start, 404, page("Link not valid", (
            "<h1>This unsubscribe link is not valid</h1>\n"
            "<p>Nothing was changed. If you copied the link from an e-mail, check that "
            "you copied all of it, or reply to the newsletter with the word "
            "“unsubscribe”.</p>")), head=head)

    def app(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "")
        _, sep, token = path.rpartition("/u/")
        if not sep or "/" in token:
            return not_found(start, method == "HEAD")
        try:
            sid, lid = read_token(secret, token)
            if (sid, lid) == PROBE_IDS and method == "POST":
                size = str(environ.get("CONTENT_LENGTH") or "0")
                body = environ["wsgi.input"].read(min(int(size), MAX_BODY) if size.isdigit() else 0)
                ok = is_one_click_body(environ.get("CONTENT_TYPE", ""), body)
                return respond(start, 200 if ok else 400, page("Probe", "<h1>Probe</h1>"))
            found = store.member(sid, lid)
        except TokenError:
            return not_found(start, method == "HEAD")
        except (StoreError, SQLAlchemyError):
            return respond(start, 503, page("Try again later", "<h1>Please try again later</h1>"))
        if found is None:
            return not_found(start, method == "HEAD")
        email, ml = found
        list_name = html.escape(ml.name)
        if method in ("GET", "HEAD"):
            try:
                already = store.is_suppressed(email, ml.id)
            except (StoreError, SQLAlchemyError):
                already = False
            if already:
                return respond(start, 200, page("Unsubscribed", (
                    f"<h1>You are unsubscribed</h1>\n<p role=\"status\">{site} no longer sends "
                    f"<strong>{list_name}</strong> to {html.escape(_mask(email))}.</p>")),
                    head=method == "HEAD")
            return respond(start, 200, page(f"Unsubscribe from {ml.name}", (
                f"<h1>Unsubscribe from {list_name}</h1>\n"
                f"<p id=\"what\">Stop sending <strong>{list_name}</strong> from {site} "
                f"to {html.escape(_mask(email))}?</p>\n"
                '<form method="post" aria-describedby="what">\n'
                '<input type="hidden" name="List-Unsubscribe" value="One-Click">\n'
                f'<button type="submit">Unsubscribe from {list_name}</button>\n'
                "</form>")), head=method == "HEAD")
        if method != "POST":
            return respond(start, 405, page("Not allowed", "<h1>Method not allowed</h1>"),
                           extra=[("Allow", "GET, HEAD, POST")])
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0:
            return respond(start, 400, page("Bad request", "<h1>Bad request</h1>"))
        if length > MAX_BODY:
            return respond(start, 413, page("Too large", "<h1>Request too large</h1>"))
        body = environ["wsgi.input"].read(length) if length else b""
        if not is_one_click_body(environ.get("CONTENT_TYPE", ""), body):
            return respond(start, 400, page("Bad request", (
                "<h1>Bad request</h1>\n<p>Expected the form "
                "<code>List-Unsubscribe=One-Click</code>. Nothing was changed.</p>")))
        try:
            store.unsubscribe_member(sid, lid, source="one-click")
        except (StoreError, SQLAlchemyError):
            return respond(start, 503, page("Try again later", "<h1>Please try again later</h1>"))
        return respond(start, 200, page("Unsubscribed", (
            f"<h1>You are unsubscribed</h1>\n<p role=\"status\">{site} will no longer send "
            f"<strong>{list_name}</strong> to {html.escape(_mask(email))}.</p>")))

    return app
