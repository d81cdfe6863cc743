"""Confirmation tokens and form tokens, both HMAC-SHA256 with ``$PBTP_MAILER_SECRET``.

A confirmation token is base64url of (request id, list id, expiry) and a
16-byte MAC over them under its own domain, so an unsubscribe token can never
pass for one. It proves we issued it for that list until that time; that it
is still unused is the store's business (``signup_requests.used_at``).

A form token guards every POST of the pages (CSRF): the time it was issued
and a MAC over that time and the page it belongs to (``scope``). A POST
without a valid one, or with one for another page, or older than
``FORM_MAX_AGE``, is refused with 403. No cookie is involved, so the token
works with a reader's privacy settings and needs no consent banner.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import sha256

from pbtp_mailer.errors import TokenError

__all__ = ["ConfirmToken", "make_confirm_token", "read_confirm_token", "make_form_token",
           "check_form_token", "FORM_MAX_AGE"]

_PACK = struct.Struct(">IIQ")
_MAC = 16
_CONFIRM = b"pbtp-mailer/confirm/v1\0"
_FORM = b"pbtp-mailer/form/v1\0"
FORM_MAX_AGE = timedelta(hours=24)


@dataclass(frozen=True)
class ConfirmToken:
    request_id: int
    list_id: int
    expires: datetime


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    if not text or len(text) > 200 or not text.isascii():
        raise TokenError("malformed token")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("malformed token") from None


def make_confirm_token(secret: bytes, request_id: int, list_id: int, expires: datetime) -> str:
    payload = _PACK.pack(request_id, list_id, int(expires.timestamp()))
    return _b64(payload + hmac.new(secret, _CONFIRM + payload, sha256).digest()[:_MAC])


def read_confirm_token(secret: bytes, token: str) -> ConfirmToken:
    """The token's contents if we signed it (expiry not checked here); ``TokenError`` if not."""
    raw = _unb64(token)
    if len(raw) != _PACK.size + _MAC:
        raise TokenError("malformed token")
    payload, mac = raw[:_PACK.size], raw[_PACK.size:]
    if not hmac.compare_digest(mac, hmac.new(secret, _CONFIRM + payload, sha256).digest()[:_MAC]):
        raise TokenError("invalid token")
    rid, lid, exp = _PACK.unpack(payload)
    return ConfirmToken(rid, lid, datetime.fromtimestamp(exp, UTC))


def make_form_token(secret: bytes, scope: str, now: datetime) -> str:
    stamp = struct.pack(">Q", int(now.timestamp()))
    mac = hmac.new(secret, _FORM + scope.encode("utf-8") + b"\0" + stamp, sha256).digest()[:_MAC]
    return _b64(stamp + mac)


def check_form_token(secret: bytes, scope: str, token: str, now: datetime) -> bool:
    """Whether ``token`` was issued by us for ``scope`` within ``FORM_MAX_AGE``."""
    try:
        raw = _unb64(token)
    except TokenError:
        return False
    if len(raw) != 8 + _MAC:
        return False
    stamp, mac = raw[:8], raw[8:]
    want = hmac.new(secret, _FORM + scope.encode("utf-8") + b"\0" + stamp, sha256).digest()[:_MAC]
    if not hmac.compare_digest(mac, want):
        return False
    issued = datetime.fromtimestamp(struct.unpack(">Q", stamp)[0], UTC)
    return timedelta(minutes=-5) <= now - issued <= FORM_MAX_AGE
