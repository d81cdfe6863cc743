"""The unsubscribe pages come from the layout's templates: overridable, autoescaped."""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

from pbtp_mailer.web.pages import SECURITY_HEADERS, PageRenderer
from pbtp_mailer.web.unsubscribe import make_app


def call(app: Any, method: str, path: str, body: bytes = b"") -> tuple[str, dict[str, str], bytes]:
    got: dict[str, Any] = {}

    def start(status: str, headers: list[tuple[str, str]]) -> None:
        got["status"], got["headers"] = status, dict(headers)

    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "CONTENT_LENGTH": str(len(body)),
               "CONTENT_TYPE": "application/x-www-form-urlencoded",
               "wsgi.input": io.BytesIO(body)}
    out = b"".join(app(environ, start))
    return got["status"], got["headers"], out


def test_project_layout_overrides_a_page(tmp_path, store, member, web_config) -> None:
    token, _ = member
    pages_dir = tmp_path / "layouts" / "default" / "pages"
    pages_dir.mkdir(parents=True)
    (pages_dir / "unsubscribe.html.j2").write_text(
        '{% extends "_base.html.j2" %}{% block title %}Adieu{% endblock %}'
        "{% block body %}<p>Leave {{ list_name }}?</p><form method=post></form>{% endblock %}",
        encoding="utf-8")
    pages = PageRenderer.for_newsletter(tmp_path, web_config.newsletter)
    app = make_app(store, web_config.secret(), web_config.newsletter, pages=pages)
    status, headers, body = call(app, "GET", f"/u/{token}")
    assert status == "200 OK"
    assert b"<title>Adieu \xe2\x80\x93 Alliance PBTP News</title>" in body
    assert b"<p>Leave news?</p>" in body
    for name, value in SECURITY_HEADERS:
        assert headers[name] == value
    # the other pages still come from the shipped layout
    status, _, body = call(app, "GET", "/u/not-a-token")
    assert status == "404 Not Found" and b"This unsubscribe link is not valid" in body


def test_values_are_escaped_never_templates(store, member, web_config) -> None:
    token, _ = member
    nl = replace(web_config.newsletter, name="<b>{{ 7*7 }}</b> & Co")
    app = make_app(store, web_config.secret(), nl)
    _, _, body = call(app, "GET", f"/u/{token}")
    assert b"&lt;b&gt;{{ 7*7 }}&lt;/b&gt; &amp; Co" in body
    assert b"<b>" not in body and b"49" not in body


def test_error_pages_come_from_the_error_template(store, member, web_config) -> None:
    token, _ = member
    app = make_app(store, web_config.secret(), web_config.newsletter)
    status, headers, body = call(app, "POST", f"/u/{token}", b"foo=bar")
    assert status == "400 Bad Request"
    assert b"<h1>Bad request</h1>" in body and b"List-Unsubscribe=One-Click" in body
    assert headers["Cache-Control"] == "no-store"
    status, headers, body = call(app, "PUT", f"/u/{token}")
    assert status == "405 Method Not Allowed" and headers["Allow"] == "GET, HEAD, POST"
    assert b"<h1>Method not allowed</h1>" in body
