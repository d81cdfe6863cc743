"""[dmarc]: ``_dmarc.<From domain>`` (or its organisational domain's) exists and
parses, ``p=`` is a policy (``none`` is a warning on a large list), and
``rua=`` asks for aggregate reports (a warning when missing).
"""

from __future__ import annotations

from dataclasses import dataclass

from pbtp_mailer.doctor.report import Check
from pbtp_mailer.doctor.resolver import Resolver
from pbtp_mailer.errors import DoctorError

__all__ = ["Policy", "check_dmarc", "parse_dmarc", "org_domain"]

_POLICIES = ("none", "quarantine", "reject")


def org_domain(domain: str) -> str:
    """The organisational domain, approximated by the last two labels (no public
    suffix list here: ``co.uk`` style registries are not handled)."""
    return ".".join(domain.lower().rstrip(".").split(".")[-2:])


@dataclass(frozen=True)
class Policy:
    domain: str  # where the record was found
    record: str
    tags: dict[str, str]

    @property
    def p(self) -> str:
        return self.tags.get("p", "")

    @property
    def adkim(self) -> str:
        return self.tags.get("adkim", "r")

    @property
    def aspf(self) -> str:
        return self.tags.get("aspf", "r")


def parse_dmarc(record: str) -> dict[str, str]:
    """Tags of a DMARC record; ``ValueError`` naming what is wrong."""
    parts = [p.strip() for p in record.split(";") if p.strip()]
    tags: dict[str, str] = {}
    for part in parts:
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"{part!r} is not tag=value")
        tags[name.strip().lower()] = value.strip()
    if not parts or parts[0].replace(" ", "") != "v=DMARC1":
        raise ValueError("it must start with v=DMARC1")
    if tags.get("p", "").lower() not in _POLICIES:
        raise ValueError(f"p= must be one of {', '.join(_POLICIES)}, got {tags.get('p')!r}")
    for key in ("adkim", "aspf"):
        if tags.get(key, "r") not in ("r", "s"):
            raise ValueError(f"{key}= must be r or s")
    tags["p"] = tags["p"].lower()
    return tags


def _find(resolver: Resolver, from_domain: str) -> tuple[str, list[str]]:
    for domain in dict.fromkeys([from_domain, org_domain(from_domain)]):
        records = [r for r in resolver.txt(f"_dmarc.{domain}") if r.startswith("v=DMARC1")]
        if records:
            return domain, records
    return from_domain, []


def check_dmarc(resolver: Resolver, from_domain: str, *, list_size: int | None = None,
                large_list: int = 5000) -> tuple[Check, Policy | None]:
    suggested = (f"publish TXT _dmarc.{from_domain} \"v=DMARC1; p=none; "
                 f"rua=mailto:dmarc-reports@{from_domain}\" (then move to p=quarantine once "
                 "the reports show only your own senders)")
    try:
        domain, records = _find(resolver, from_domain)
    except DoctorError as exc:
        return Check("dmarc", "fail", str(exc), "check the resolver, or pass --nameserver"), None
    name = f"_dmarc.{domain}"
    if not records:
        return Check("dmarc", "fail", f"_dmarc.{from_domain}: no DMARC record (Gmail and Yahoo "
                     "require one for bulk senders)", suggested), None
    if len(records) > 1:
        return Check("dmarc", "fail", f"{name}: {len(records)} DMARC records (receivers ignore "
                     "them all)", f"keep one TXT record at {name}"), None
    try:
        tags = parse_dmarc(records[0])
    except ValueError as exc:
        return Check("dmarc", "fail", f"{name}: {records[0]!r}: {exc}", suggested), None
    policy = Policy(domain, records[0], tags)
    problems = []
    fixed = dict(tags)
    if policy.p == "none" and list_size is not None and list_size >= large_list:
        problems.append(f"p=none on a list of {list_size:,} (monitoring only: spoofed mail "
                        "is delivered)")
        fixed["p"] = "quarantine"
    if "rua" not in tags:
        problems.append("no rua= (nobody receives the aggregate reports)")
        fixed["rua"] = f"mailto:dmarc-reports@{domain}"
    if problems:
        value = "; ".join(f"{k}={v}" for k, v in fixed.items())
        return Check("dmarc", "warn", f"{name}: " + "; ".join(problems),
                     f"publish TXT {name} \"{value}\""), policy
    return Check("dmarc", "ok", f"{name}: {records[0]}"), policy
