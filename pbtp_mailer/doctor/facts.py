"""What the checks need to know about the set-up, gathered once from the config.

The From domain, the envelope (bounce) domain, the sender's kind and host,
the provider that signs and sends for us, and the DKIM keys to check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pbtp_mailer.doctor.settings import DoctorSettings

if TYPE_CHECKING:
    from pbtp_mailer.config import Config

__all__ = ["Facts", "DKIMKey", "PROVIDERS", "LOCAL_KINDS", "gather"]


@dataclass(frozen=True)
class Provider:
    name: str
    spf_include: str
    dkim_records: str  # what the provider asks its customers to publish


PROVIDERS = {
    "ses": Provider("Amazon SES", "amazonses.com",
                    "three CNAME records TOKEN._domainkey.DOMAIN -> TOKEN.dkim.amazonses.com "
                    "(SES console: Verified identities -> DKIM), and a custom MAIL FROM domain "
                    "(MX feedback-smtp.REGION.amazonses.com, TXT v=spf1 include:amazonses.com "
                    "~all) for SPF alignment"),
    "postmark": Provider("Postmark", "spf.mtasv.net",
                         "a TXT record DATEpm._domainkey.DOMAIN with the key Postmark shows "
                         "(Sender signatures -> DNS settings), and a CNAME pm-bounces.DOMAIN -> "
                         "pm.mtasv.net for the Return-Path"),
    "sendgrid": Provider("SendGrid", "sendgrid.net",
                         "CNAME records s1._domainkey.DOMAIN and s2._domainkey.DOMAIN -> "
                         "s1/s2.domainkey.uNNN.wlNNN.sendgrid.net and emNNN.DOMAIN -> "
                         "uNNN.wlNNN.sendgrid.net (Settings -> Sender authentication)"),
    "mailgun": Provider("Mailgun", "mailgun.org",
                        "a TXT record SELECTOR._domainkey.DOMAIN with the key Mailgun shows "
                        "(Sending -> Domains -> DNS records) and TXT v=spf1 include:mailgun.org "
                        "~all on the sending domain"),
}
#: kinds that deliver nothing to the Internet: the gate has nothing to protect
LOCAL_KINDS = frozenset({"outbox", "console", "memory"})


@dataclass(frozen=True)
class DKIMKey:
    selector: str
    domain: str
    key_file: Path
    algorithm: str  # "rsa" or "ed25519"


@dataclass(frozen=True)
class Facts:
    sender_name: str
    kind: str
    smtp_host: str | None
    provider: Provider | None
    from_domain: str
    envelope_domain: str
    dkim_keys: tuple[DKIMKey, ...]
    settings: DoctorSettings

    @property
    def local(self) -> bool:
        return self.kind in LOCAL_KINDS


def gather(config: Config, sender_name: str | None = None) -> Facts:
    """``ConfigError``/``UnknownSenderError`` for an unknown sender (exit 2)."""
    from pbtp_mailer.senders.registry import sender_spec

    settings = config.section("doctor", DoctorSettings)
    spec = sender_spec(sender_name, config)
    opts = spec.options
    from_domain = config.newsletter.from_address.rpartition("@")[2].lower()
    keys = []
    selector, domain = opts.get("dkim_selector"), opts.get("dkim_domain")
    if selector and domain and opts.get("dkim_key_file"):
        keys.append(DKIMKey(str(selector), str(domain).lower(),
                            config.resolve(str(opts["dkim_key_file"])), "rsa"))
    if domain and opts.get("dkim_ed25519_key_file"):
        keys.append(DKIMKey(str(opts.get("dkim_ed25519_selector") or selector), str(domain).lower(),
                            config.resolve(str(opts["dkim_ed25519_key_file"])), "ed25519"))
    host = opts.get("host") if spec.kind in ("smtp", "smtps") else None
    return Facts(
        sender_name=spec.name, kind=spec.kind, smtp_host=str(host) if host else None,
        provider=PROVIDERS.get(spec.kind), from_domain=from_domain,
        envelope_domain=(settings.bounce_domain or from_domain).lower().rstrip("."),
        dkim_keys=tuple(keys), settings=settings)
