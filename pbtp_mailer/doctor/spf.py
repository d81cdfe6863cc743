"""[spf]: one SPF record on the envelope domain, that parses, stays within ten
DNS-querying terms (RFC 7208 4.6.4, counted through every include and
redirect) and authorises the sender (its SMTP host's addresses, or the
provider's include).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from pbtp_mailer.doctor.facts import Facts
from pbtp_mailer.doctor.report import Check
from pbtp_mailer.doctor.resolver import Resolver
from pbtp_mailer.errors import DoctorError

__all__ = ["check_spf", "spf_records", "walk_spf", "SPFWalk", "MAX_LOOKUPS"]

MAX_LOOKUPS = 10
_LOOKUP_TERMS = frozenset({"include", "a", "mx", "ptr", "exists", "redirect"})
_MECHANISMS = frozenset({"all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists"})
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def spf_records(txts: list[str]) -> list[str]:
    return [t for t in txts if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]


@dataclass
class SPFWalk:
    """What a walk through a record and everything it includes found."""

    lookups: int = 0
    includes: set[str] = field(default_factory=set)
    networks: list[Network] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    allows_all: bool = False
    visited: set[str] = field(default_factory=set)


def _network(text: str, where: str, walk: SPFWalk) -> None:
    try:
        walk.networks.append(ipaddress.ip_network(text, strict=False))
    except ValueError:
        walk.errors.append(f"{where}: {text!r} is not an IP address or range")


def _term(resolver: Resolver, domain: str, term: str, walk: SPFWalk) -> str | None:
    """Account one term; the redirect target if it is ``redirect=``."""
    qualifier = term[0] if term[0] in "+-~?" else "+"
    body = term[1:] if term[0] in "+-~?" else term
    name, sep, value = body.partition("=")
    if sep and ":" not in name and "/" not in name:
        if name.lower() == "redirect":
            walk.lookups += 1
            return value
        return None  # exp= and unknown modifiers do not count
    mech, _, arg = body.partition(":")
    mech, _, cidr = mech.partition("/")
    mech = mech.lower()
    if mech not in _MECHANISMS:
        walk.errors.append(f"{domain}: unknown term {term!r}")
        return None
    if mech in _LOOKUP_TERMS:
        walk.lookups += 1
    if qualifier != "+":
        return None
    if mech == "all":
        walk.allows_all = True
    elif mech in ("ip4", "ip6"):
        _network(arg, domain, walk)
    elif mech == "include":
        if not arg:
            walk.errors.append(f"{domain}: include without a domain")
        else:
            walk.includes.add(arg.lower())
            _walk(resolver, arg.lower(), walk, included=True)
    elif mech in ("a", "mx") and "%" not in arg:
        target = (arg or domain).split("/")[0]
        hosts = [target] if mech == "a" else \
            [m.split(" ", 1)[1] for m in resolver.mx(target)]
        for host in hosts:
            for ip in resolver.addresses(host):
                _network(f"{ip}/{cidr}" if cidr and mech == "a" else ip, domain, walk)
    return None


def _walk(resolver: Resolver, domain: str, walk: SPFWalk, *, included: bool) -> None:
    if domain in walk.visited:
        walk.errors.append(f"{domain}: included twice (a loop)")
        return
    walk.visited.add(domain)
    records = spf_records(resolver.txt(domain))
    if len(records) != 1:
        what = "no SPF record" if not records else f"{len(records)} SPF records"
        walk.errors.append(f"{'included ' if included else ''}{domain}: {what}")
        return
    redirect = None
    for term in records[0].split()[1:]:
        redirect = _term(resolver, domain, term, walk) or redirect
        if walk.lookups > 3 * MAX_LOOKUPS:
            return  # far past the limit: counting on only costs queries
    if redirect:
        _walk(resolver, redirect.lower(), walk, included=True)


def walk_spf(resolver: Resolver, domain: str) -> SPFWalk:
    walk = SPFWalk()
    _walk(resolver, domain, walk, included=False)
    return walk


def _with(record: str | None, mechanism: str) -> str:
    """``record`` with ``mechanism`` added before its ``all`` (or a new record)."""
    if not record:
        return f"v=spf1 {mechanism} ~all"
    terms = record.split()
    for i, t in enumerate(terms):
        if t.lstrip("+-~?").lower() == "all" or t.lower().startswith("redirect="):
            return " ".join(terms[:i] + [mechanism] + terms[i:])
    return " ".join(terms + [mechanism])


def _authorised(resolver: Resolver, facts: Facts, walk: SPFWalk, record: str | None,
                domain: str) -> Check | None:
    """A failing check when the sender is not authorised, else None."""
    if facts.provider is not None:
        need = facts.provider.spf_include
        if need in walk.includes:
            return None
        return Check("spf", "fail", f"{domain}: SPF does not include {need} "
                     f"({facts.provider.name} sends for sender '{facts.sender_name}')",
                     f"publish TXT {domain} \"{_with(record, 'include:' + need)}\"")
    if facts.smtp_host is None:
        return None
    try:
        ipaddress.ip_address(facts.smtp_host)
        ips = [facts.smtp_host]
    except ValueError:
        ips = resolver.addresses(facts.smtp_host)
    if not ips:
        return Check("spf", "warn", f"SMTP host {facts.smtp_host} has no address in DNS: "
                     "cannot tell whether SPF authorises it",
                     f"check [senders.{facts.sender_name}] host")
    missing = [ip for ip in ips
               if not any(ipaddress.ip_address(ip) in n for n in walk.networks)]
    if not missing:
        return None
    if all(ipaddress.ip_address(ip).is_loopback for ip in missing):
        return Check("spf", "warn", f"{domain}: the relay {facts.smtp_host} is on this machine "
                     f"({', '.join(missing)}): SPF must authorise the public address it relays "
                     "from, which cannot be seen from here",
                     f"make sure TXT {domain} lists that address (ip4:/ip6: or a:)")
    mech = " ".join(f"ip{ipaddress.ip_address(ip).version}:{ip}" for ip in missing)
    return Check("spf", "fail", f"{domain}: SPF does not authorise {facts.smtp_host} "
                 f"({', '.join(missing)})", f"publish TXT {domain} \"{_with(record, mech)}\"")


def check_spf(resolver: Resolver, facts: Facts) -> Check:
    domain = facts.envelope_domain
    try:
        records = spf_records(resolver.txt(domain))
        suggestion = _with(None, f"include:{facts.provider.spf_include}" if facts.provider
                           else f"a:{facts.smtp_host}" if facts.smtp_host else "mx")
        if not records:
            return Check("spf", "fail", f"{domain}: no SPF record",
                         f"publish TXT {domain} \"{suggestion}\"")
        if len(records) > 1:
            merged = " ".join(["v=spf1"] + sorted({t for r in records for t in r.split()[1:]
                                                   if t.lstrip("+-~?").lower() != "all"})
                              + ["~all"])
            return Check("spf", "fail", f"{domain}: {len(records)} SPF records (receivers "
                         "treat that as a permanent error): " + " | ".join(records),
                         f"keep one TXT record at {domain}: \"{merged}\"")
        walk = walk_spf(resolver, domain)
        if walk.errors:
            return Check("spf", "fail", f"{domain}: SPF record does not evaluate: "
                         + "; ".join(walk.errors), f"fix the record at {domain}: {records[0]}")
        if walk.lookups > MAX_LOOKUPS:
            return Check("spf", "fail", f"{domain}: SPF needs {walk.lookups} DNS lookups "
                         f"(limit {MAX_LOOKUPS}; receivers answer permerror)",
                         f"shorten TXT {domain}: replace includes you do not send through "
                         "with nothing, and fixed hosts with ip4:/ip6: ranges")
        if walk.allows_all:
            return Check("spf", "fail", f"{domain}: SPF ends in +all: anybody may send as you",
                         f"publish TXT {domain} \"{records[0].rsplit(' ', 1)[0]} ~all\"")
        bad = _authorised(resolver, facts, walk, records[0], domain)
    except DoctorError as exc:
        return Check("spf", "fail", str(exc), "check the resolver, or pass --nameserver")
    if bad is not None:
        return bad
    who = facts.provider.name if facts.provider else facts.smtp_host or facts.sender_name
    return Check("spf", "ok", f"{domain}: one SPF record, {walk.lookups} DNS lookups, "
                 f"authorises {who}: {records[0]}")
