"""``run_doctor``: every check that can run, in order, into one ``Report``.

Network checks (DNS, the unsubscribe probe) are skipped with ``offline``
and one line says so. ``fast_checks`` is the subset the send gate runs
(config, SPF, DKIM, DMARC, alignment) on a resolver with the file cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pbtp_mailer.doctor.alignment import check_alignment
from pbtp_mailer.doctor.configcheck import check_config
from pbtp_mailer.doctor.dkimcheck import check_dkim
from pbtp_mailer.doctor.dmarc import check_dmarc
from pbtp_mailer.doctor.facts import Facts, gather
from pbtp_mailer.doctor.message import check_message
from pbtp_mailer.doctor.mxptr import check_mx, check_ptr
from pbtp_mailer.doctor.probes import check_unsubscribe_url, probe_unsubscribe
from pbtp_mailer.doctor.report import Check, Report
from pbtp_mailer.doctor.reputation import check_reputation
from pbtp_mailer.doctor.resolver import DNSCache, Resolver, parse_nameserver
from pbtp_mailer.doctor.spf import check_spf
from pbtp_mailer.errors import MailerError

if TYPE_CHECKING:
    from pbtp_mailer.config import Config
    from pbtp_mailer.store import Store

__all__ = ["DoctorOptions", "run_doctor", "fast_checks", "make_resolver", "CACHE_FILE"]

CACHE_FILE = "doctor-dns-cache.json"


@dataclass(frozen=True)
class DoctorOptions:
    sender: str | None = None
    issue: str | Path | None = None
    nameserver: str | None = None
    offline: bool = False
    spamassassin: bool = True


def make_resolver(config: Config, facts: Facts, nameserver: str | None = None, *,
                  cached: bool = False) -> Resolver:
    """``nameserver`` (``--nameserver``) over ``[doctor] nameserver`` over the system's.

    ``cached``: answers from the file cache when fresh; otherwise every answer is
    asked afresh and written to it (so a fixed record counts at the next send)."""
    chosen = nameserver or facts.settings.nameserver
    cache = DNSCache(config.data_dir / CACHE_FILE, facts.settings.cache_seconds, read=cached) \
        if facts.settings.cache_seconds and not nameserver else None
    return Resolver(parse_nameserver(chosen) if chosen else None,
                    timeout=facts.settings.timeout, cache=cache)


def _largest_list(store: Store | None) -> int | None:
    if store is None:
        return None
    try:
        return max((c.active for c in store.list_counts()), default=0)
    except MailerError:
        return None


def fast_checks(config: Config, facts: Facts, resolver: Resolver,
                list_size: int | None = None) -> list[Check]:
    """What the send gate checks: config, SPF, DKIM, DMARC, alignment."""
    out = check_config(config)
    out.append(check_spf(resolver, facts))
    out += check_dkim(resolver, facts)
    dmarc, policy = check_dmarc(resolver, facts.from_domain, list_size=list_size,
                                large_list=facts.settings.large_list)
    out.append(dmarc)
    out.append(check_alignment(facts, policy))
    return out


def run_doctor(config: Config, options: DoctorOptions, *, store: Store | None = None) -> Report:
    """Every check; ``ConfigError`` (exit 2) for an unknown sender or a bad nameserver."""
    facts = gather(config, options.sender)
    report = Report()
    resolver = None if options.offline else make_resolver(config, facts, options.nameserver)
    if resolver is None:
        report.add(check_config(config))
        report.add(Check("offline", "warn", "--offline: skipped spf, dkim, dmarc, alignment, "
                         "mx, ptr and the unsubscribe probe", "run without --offline"))
        report.add(check_alignment(facts, None))
        report.add(check_unsubscribe_url(config))
    else:
        report.add(fast_checks(config, facts, resolver, _largest_list(store)))
        report.add(check_mx(resolver, facts))
        report.add(check_ptr(resolver, facts))
        report.add(check_unsubscribe_url(config))
        report.add(probe_unsubscribe(config, timeout=facts.settings.timeout))
    if options.issue is not None:
        report.add(check_message(config, facts, options.issue, resolver,
                                 spamassassin=options.spamassassin))
    if store is not None:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            report.add(check_reputation(store, config))
        except (MailerError, SQLAlchemyError) as exc:
            report.add(Check("reputation", "warn", f"ledger not readable: {exc}", "check the "
                             "database"))
    else:
        report.add(Check("reputation", "warn", "no database: rates not checked",
                         "run where the database is reachable"))
    return report
