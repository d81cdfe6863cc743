"""Small helpers for the sign-up tests: forms over real HTTP."""

from __future__ import annotations

import re
from urllib.parse import urlencode

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def form_token(body: bytes) -> str:
    m = re.search(r'name="form_token" value="([^"]+)"', body.decode())
    assert m, body.decode()
    return m.group(1)


def post(served, path: str, fields: dict[str, str] | list[tuple[str, str]],
         headers: dict[str, str] | None = None):
    return served.request("POST", path, urlencode(fields).encode(), {**FORM, **(headers or {})})


def sign_up(site, list_name: str, email: str, **extra: str):
    status, _, body = site.http.request("GET", f"/subscribe/{list_name}")
    assert status == 200
    return post(site.http, f"/subscribe/{list_name}",
                {"form_token": form_token(body), "email": email, "name": "", "website": "",
                 **extra})


def confirm(site, path: str):
    status, _, body = site.http.request("GET", path)
    assert status == 200, body.decode()
    return post(site.http, path, {"form_token": form_token(body)})
