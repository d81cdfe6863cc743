"""Bounce and complaint rates per dispatch, and the complaint-rate gate.

Gmail, Yahoo and Microsoft act on a spam-complaint rate of 0.3% and want
senders below 0.1%. The gate looks at the last ``rate_dispatches``
dispatches that sent anything (those since a person last overrode it):

    rate >= complaint_warn_rate (0.1%)    send and dispatch-due warn
    rate >= complaint_refuse_rate (0.3%)  dispatch-due refuses to start a new
                                          dispatch until a person runs ``send``
                                          (which lifts the refusal, with a warning)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pbtp_mailer.errors import DispatchError
from pbtp_mailer.feedback.settings import load_settings

if TYPE_CHECKING:
    from pbtp_mailer.config import Config
    from pbtp_mailer.store import Store

__all__ = ["Gate", "complaint_gate", "complaint_warnings", "cron_gate", "acknowledge_by_person",
           "dispatch_feedback", "format_feedback"]

_ACK = ("gate", "person-override")


@dataclass(frozen=True)
class Gate:
    level: str  # ok | warn | refuse
    rate: float
    complaints: int
    sent: int
    dispatches: int
    warn_at: float
    refuse_at: float

    def text(self) -> str:
        return (f"complaint rate {self.rate:.2%} ({self.complaints} of {self.sent} sent) over "
                f"the last {self.dispatches} dispatch(es); mailbox providers act at "
                f"{self.refuse_at:.1%} and want below {self.warn_at:.1%}")


def complaint_gate(store: Store, config: Config) -> Gate:
    s = load_settings(config)
    log = store.feedback
    since = log.nonce_time(*_ACK)
    ids = log.recent_dispatch_ids(s.rate_dispatches, since=since)
    rates = log.rates(ids).values()
    sent = sum(r.sent for r in rates)
    complaints = sum(r.complaints for r in rates)
    rate = complaints / sent if sent else 0.0
    level = ("refuse" if sent and rate >= s.complaint_refuse_rate
             else "warn" if sent and rate >= s.complaint_warn_rate else "ok")
    return Gate(level, rate, complaints, sent, len(ids), s.complaint_warn_rate,
                s.complaint_refuse_rate)


def complaint_warnings(store: Store, config: Config) -> list[str]:
    """Warnings for ``send`` (shown with the plan)."""
    gate = complaint_gate(store, config)
    if gate.level == "ok":
        return []
    extra = ("; dispatch-due refuses new dispatches until a person sends" if
             gate.level == "refuse" else "")
    return [gate.text() + extra + " (pbtp-mailer bounces list --kind complaint)"]


def cron_gate(store: Store, config: Config, *, warn: Callable[[str], Any]) -> None:
    """For ``dispatch-due`` before a new dispatch: warn, or refuse (``DispatchError``)."""
    gate = complaint_gate(store, config)
    if gate.level == "refuse":
        raise DispatchError(
            f"not started: {gate.text()}",
            hint="look at pbtp-mailer bounces list --kind complaint; a person running "
                 "pbtp-mailer send lifts this")
    if gate.level == "warn":
        warn(f"warning: {gate.text()}")


def acknowledge_by_person(store: Store, config: Config) -> bool:
    """``send`` run by a person: lift a cron refusal (the window restarts now). True if lifted."""
    if complaint_gate(store, config).level != "refuse":
        return False
    store.feedback.set_nonce(*_ACK)
    return True


def dispatch_feedback(store: Store, dispatch_id: int) -> dict[str, Any]:
    """Bounce and complaint numbers of one dispatch, for ``status``."""
    r = store.feedback.rates([dispatch_id])[dispatch_id]
    return {"sent": r.sent, "hard_bounces": r.hard, "soft_bounces": r.soft,
            "complaints": r.complaints, "unsubscribes": r.unsubscribes,
            "bounce_rate": round(r.bounce_rate, 6), "complaint_rate": round(r.complaint_rate, 6)}


def format_feedback(f: dict[str, Any]) -> str:
    return (f"  feedback: bounces {f['hard_bounces']} hard + {f['soft_bounces']} soft "
            f"({f['bounce_rate']:.2%}), complaints {f['complaints']} "
            f"({f['complaint_rate']:.2%}), provider unsubscribes {f['unsubscribes']}")


