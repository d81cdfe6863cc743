"""[mx] the bounce domain receives mail when bounces come back by mail;
[ptr] a self-hosted SMTP relay's address has forward-confirmed reverse DNS.
"""

from __future__ import annotations

import ipaddress

from pbtp_mailer.doctor.facts import Facts
from pbtp_mailer.doctor.report import Check
from pbtp_mailer.doctor.resolver import Resolver
from pbtp_mailer.errors import DoctorError

__all__ = ["check_mx", "check_ptr"]


def check_mx(resolver: Resolver, facts: Facts) -> Check:
    domain = facts.envelope_domain
    if not facts.settings.bounces_by_mail:
        return Check("mx", "ok", f"{domain}: bounces are not received by mail "
                     "([doctor] bounces_by_mail = false): MX not needed")
    try:
        mx = resolver.mx(domain)
    except DoctorError as exc:
        return Check("mx", "fail", str(exc), "check the resolver, or pass --nameserver")
    if not mx:
        return Check("mx", "fail", f"{domain}: no MX record: bounces sent back to it are lost",
                     f"publish MX {domain} \"10 mail.{domain}\" (a host that accepts the "
                     "bounces)")
    return Check("mx", "ok", f"{domain}: MX {', '.join(mx)}")


def check_ptr(resolver: Resolver, facts: Facts) -> Check:
    host = facts.smtp_host
    if host is None:
        why = f"{facts.provider.name}'s relays" if facts.provider else \
            f"sender '{facts.sender_name}' ({facts.kind})"
        return Check("ptr", "ok", f"not a self-hosted relay ({why}): reverse DNS not ours")
    try:
        try:
            ips = [str(ipaddress.ip_address(host))]
        except ValueError:
            ips = resolver.addresses(host)
        if not ips:
            return Check("ptr", "fail", f"{host}: no address in DNS",
                         f"publish A {host} with the relay's public address")
        bad = []
        for ip in ips:
            names = resolver.ptr(ip)
            if not names:
                bad.append((ip, "no PTR record"))
            elif not any(ip in resolver.addresses(n) for n in names):
                bad.append((ip, f"PTR {', '.join(names)} does not resolve back to {ip}"))
    except DoctorError as exc:
        return Check("ptr", "fail", str(exc), "check the resolver, or pass --nameserver")
    if bad and all(ipaddress.ip_address(ip).is_loopback for ip, _ in bad):
        return Check("ptr", "warn", f"{host} is on this machine ({', '.join(ips)}): check the "
                     "reverse DNS of the public address it relays from",
                     "ask whoever owns that address to set its PTR to the relay's name")
    if bad:
        return Check("ptr", "fail", f"{host}: " + "; ".join(f"{ip}: {why}" for ip, why in bad),
                     "; ".join(f"ask whoever owns {ip} (the hosting provider) to set its "
                               f"reverse DNS (PTR) to {host}" for ip, _ in bad))
    return Check("ptr", "ok", f"{host}: {', '.join(ips)} have forward-confirmed reverse DNS")
