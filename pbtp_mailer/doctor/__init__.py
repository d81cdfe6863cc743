"""``pbtp-mailer doctor``: deliverability checked before it hurts.

SPF, DKIM, DMARC and their alignment (through dnspython, pointable at any
resolver), the bounce domain's MX and the relay's reverse DNS, the one-click
unsubscribe endpoint (a probe that changes nothing), a built and signed copy
of an issue, the config's placeholders and the ledger's bounce rate. The
same checks, cached, gate large dispatches (``gate_dispatch``).
"""

from pbtp_mailer.doctor.gate import gate_dispatch, review_warnings
from pbtp_mailer.doctor.report import Check, Report
from pbtp_mailer.doctor.resolver import DNSCache, Resolver, parse_nameserver
from pbtp_mailer.doctor.runner import DoctorOptions, fast_checks, run_doctor
from pbtp_mailer.doctor.settings import DoctorSettings

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
