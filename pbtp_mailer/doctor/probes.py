"""[unsubscribe]: the one-click URL is https and the running ``serve`` answers a
probe at it: a POST of ``List-Unsubscribe=One-Click`` to the probe token
(``tokens.make_probe_token``, which the endpoint answers and changes nothing
for), 2xx, no redirect, no cookie (RFC 8058 3.2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pbtp_mailer.doctor.report import Check
from pbtp_mailer.errors import ConfigError

if TYPE_CHECKING:
    import httpx

    from pbtp_mailer.config import Config

__all__ = ["check_unsubscribe_url", "probe_unsubscribe"]


def check_unsubscribe_url(config: Config) -> Check:
    base = config.newsletter.unsubscribe_base_url
    if not base.startswith("https://"):
        return Check("unsubscribe", "fail", f"{base}: one-click unsubscribe must be https "
                     "(RFC 8058; Gmail ignores http URLs)",
                     "serve pbtp-mailer serve behind TLS and set [newsletter] "
                     "unsubscribe_base_url = \"https://...\"")
    return Check("unsubscribe", "ok", f"{base}: https")


def probe_unsubscribe(config: Config, *, timeout: float = 10.0,
                      transport: httpx.BaseTransport | None = None) -> Check:
    import httpx

    from pbtp_mailer.tokens import make_probe_token

    try:
        token = make_probe_token(config.secret())
    except ConfigError as exc:
        return Check("unsubscribe", "fail", f"cannot sign the probe: {exc}", exc.hint or "")
    base = config.newsletter.unsubscribe_base_url
    url = base + ("" if base.endswith("/") else "/") + token
    start = "start pbtp-mailer serve where this URL points (and the same PBTP_MAILER_SECRET)"
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, transport=transport) as http:
            resp = http.post(url, data={"List-Unsubscribe": "One-Click"})
    except httpx.HTTPError as exc:
        return Check("unsubscribe", "fail", f"POST {url}: {type(exc).__name__}: {exc}", start)
    if not 200 <= resp.status_code < 300:
        why = {404: "the probe token is unknown there: another secret or an older version?"}
        return Check("unsubscribe", "fail", f"POST {url}: answered {resp.status_code} "
                     f"{resp.reason_phrase}; one-click needs 2xx without a redirect",
                     why.get(resp.status_code, start))
    if "set-cookie" in resp.headers:
        return Check("unsubscribe", "fail", f"POST {url}: sets a cookie; RFC 8058 forbids it",
                     "remove the cookie from the proxy in front of serve")
    return Check("unsubscribe", "ok", f"POST {url}: {resp.status_code}, no cookie "
                 "(probe token: nothing changed)")
