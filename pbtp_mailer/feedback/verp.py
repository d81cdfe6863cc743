"""VERP return paths: ``bounces+<token>@<bounce domain>``, one per copy.

The token names the ledger row (``deliveries.id``) and carries a MAC, so a
DSN maps to its recipient even when the returned message's headers were
stripped, and nobody can forge a bounce for an address by mailing a made-up
token. Lower-case base32: receivers that fold the local part's case do not
break it. The From header never changes; only the envelope sender does.

    12345-k3m2q8x0c4v6b7n1      id, '-', 16 base32 chars of HMAC-SHA256
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Verp", "verp_for"]

_TOKEN = re.compile(r"^(\d{1,18})-([a-z2-7]{16})$")


@dataclass(frozen=True)
class Verp:
    key: bytes
    local: str
    domain: str

    @classmethod
    def from_secret(cls, secret: bytes, local: str, domain: str) -> Verp:
        key = hmac.new(secret, b"pbtp-mailer verp v1", hashlib.sha256).digest()
        return cls(key, local, domain.lower().rstrip("."))

    def _mac(self, delivery_id: int) -> str:
        raw = hmac.new(self.key, str(delivery_id).encode(), hashlib.sha256).digest()[:10]
        return base64.b32encode(raw).decode("ascii").lower()

    def address(self, delivery_id: int) -> str:
        return f"{self.local}+{delivery_id}-{self._mac(delivery_id)}@{self.domain}"

    def delivery_id(self, address: str) -> int | None:
        """The ledger row named by a VERP address, or None (not ours, or forged)."""
        local, _, domain = address.strip().strip("<>").rpartition("@")
        if domain.lower().rstrip(".") != self.domain:
            return None
        base, plus, token = local.partition("+")
        if not plus or base.lower() != self.local.lower():
            return None
        m = _TOKEN.match(token.lower())
        if m is None:
            return None
        did = int(m.group(1))
        return did if hmac.compare_digest(m.group(2), self._mac(did)) else None

    def find(self, addresses: Iterable[str]) -> int | None:
        for a in addresses:
            did = self.delivery_id(a)
            if did is not None:
                return did
        return None


def verp_for(config: object) -> Verp | None:
    """The VERP codec of a config, or None when no bounce domain is set (or VERP is off).

    Reading tokens needs only the domain, so ``bounces ingest`` still maps
    old copies after VERP is switched off for new ones (``verp = false``).
    """
    from pbtp_mailer.feedback.settings import load_settings

    settings = load_settings(config)
    if not settings.bounce_domain:
        return None
    secret = config.secret()  # type: ignore[attr-defined]
    return Verp.from_secret(secret, settings.verp_local, settings.bounce_domain)
