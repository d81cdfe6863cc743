"""The send gate: ``send`` and ``dispatch-due`` refuse to start a dispatch to more
than ``[dispatch] doctor_gate_recipients`` when a fast check fails (DNS
answers cached an hour under the data dir); ``--skip-doctor`` overrides it.
``test-send`` only warns. Senders that deliver nothing (outbox, console,
memory) are never checked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pbtp_mailer.doctor.report import Check
from pbtp_mailer.errors import DoctorError, MailerError

if TYPE_CHECKING:
    from pbtp_mailer.config import Config

__all__ = ["gate_dispatch", "review_warnings"]


def _line(c: Check) -> str:
    return f"[{c.id}] {c.message}"


def _checks(config: Config, sender: str | None) -> list[Check] | None:
    # imported here: a send at or below the gate's size, or with --skip-doctor, never
    # runs a check and need not load the resolver and the checks (~12 ms at start-up)
    from pbtp_mailer.doctor.facts import gather
    from pbtp_mailer.doctor.runner import fast_checks, make_resolver

    facts = gather(config, sender)
    if facts.local:
        return None
    try:
        return fast_checks(config, facts, make_resolver(config, facts, cached=True))
    except DoctorError as exc:  # no resolver at all
        return [Check("dns", "fail", str(exc), exc.hint or "")]


def gate_dispatch(config: Config, sender: str | None, recipients: int, *,
                  skip: bool = False) -> list[str]:
    """Notes to show; ``DoctorError`` when a dispatch this large must not start."""
    limit = config.dispatch.doctor_gate_recipients
    if recipients <= limit:
        return []
    if skip:
        return [f"doctor checks skipped (--skip-doctor) for {recipients} recipients"]
    checks = _checks(config, sender)
    if checks is None:
        return []
    failed = [c for c in checks if c.status == "fail"]
    if failed:
        raise DoctorError(
            f"doctor: refusing to send to {recipients} recipients (more than [dispatch] "
            f"doctor_gate_recipients = {limit}): " + "; ".join(_line(c) for c in failed),
            hint="pbtp-mailer doctor shows each fix (and refreshes the DNS answers cached "
                 "for an hour); --skip-doctor sends anyway")
    return [f"doctor: warn {_line(c)}" for c in checks if c.status == "warn"]


def review_warnings(config: Config, sender: str | None) -> list[str]:
    """What a test send should mention (it never refuses)."""
    try:
        checks = _checks(config, sender)
    except MailerError as exc:
        return [f"doctor: {exc}"]
    return [f"doctor: {c.status} {_line(c)}" for c in checks or [] if c.status != "ok"]
