"""``pbtp-mailer doctor``: deliverability checked before it hurts.

SPF, DKIM, DMARC and their alignment (through dnspython, pointable at any
resolver), the bounce domain's MX and the relay's reverse DNS, the one-click
unsubscribe endpoint (a probe that changes nothing), a built and signed copy
of an issue, the config's placeholders and the ledger's bounce rate. The
same checks, cached, gate large dispatches (``gate_dispatch``).

Its public names load on first use (PEP 562): ``send`` imports ``gate_dispatch``
only, and a send the gate does not check must not pay for dnspython and the
checks at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pbtp_mailer.lazy import lazy_exports

if TYPE_CHECKING:
    from pbtp_mailer.doctor.gate import gate_dispatch, review_warnings
    from pbtp_mailer.doctor.report import Check, Report
    from pbtp_mailer.doctor.resolver import DNSCache, Resolver, parse_nameserver
    from pbtp_mailer.doctor.runner import DoctorOptions, fast_checks, run_doctor
    from pbtp_mailer.doctor.settings import DoctorSettings

_WHERE = {
    "gate_dispatch": "gate", "review_warnings": "gate", "Check": "report", "Report": "report",
    "DNSCache": "resolver", "Resolver": "resolver", "parse_nameserver": "resolver",
    "DoctorOptions": "runner", "fast_checks": "runner", "run_doctor": "runner",
    "DoctorSettings": "settings",
}


__getattr__ = lazy_exports(__name__, _WHERE)

__all__ = [
    "Check",
    "Report",
    "DoctorOptions",
    "DoctorSettings",
    "DNSCache",
    "Resolver",
    "parse_nameserver",
    "run_doctor",
    "fast_checks",
    "gate_dispatch",
    "review_warnings",
]
