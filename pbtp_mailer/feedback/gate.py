"""Bounce and complaint rates per dispatch, and the complaint-rate gate.

Gmail, Yahoo and Microsoft act on a spam-complaint rate of 0.3% and want
senders below 0.1%. The gate looks at the last ``rate_dispatches``
dispatches that sent anything (those since a person last overrode it):

    rate >= complaint_warn_rate (0.1%)    send and dispatch-due warn
    rate >= complaint_refuse_rate (0.3%)  dispatch-due refuses to start a new
                                          dispatch until a person runs ``send``
                                          (which lifts the refusal, with a warning)

``recent_window`` is the one place those rates are summed; ``doctor``'s
[reputation] check reads the same window, grades the complaint rate with the
same ``Gate`` and the bounce rate against ``BOUNCE_WARN_RATE`` (2%) and
``BOUNCE_REFUSE_RATE`` (5%) with the same ``grade``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pbtp_mailer.errors import DispatchError
from pbtp_mailer.feedback.settings import load_settings
from pbtp_mailer.store.feedback import Rates

if TYPE_CHECKING:
    from pbtp_mailer.config import Config
    from pbtp_mailer.store import Store

__all__ = ["Gate", "Window", "grade", "recent_window", "complaint_gate", "complaint_warnings",
           "cron_gate", "acknowledge_by_person", "dispatch_feedback", "format_feedback",
           "BOUNCE_WARN_RATE", "BOUNCE_REFUSE_RATE"]

_ACK = ("gate", "person-override")

#: bounce-rate lines (bounced addresses of the copies tried) mailbox providers watch
BOUNCE_WARN_RATE = 0.02
BOUNCE_REFUSE_RATE = 0.05


def grade(rate: float, warn_at: float, refuse_at: float, *, measured: bool = True) -> str:
    """``ok``, ``warn`` or ``refuse`` for a rate against its two lines (ok when nothing was sent)."""
    if not measured:
        return "ok"
    return "refuse" if rate >= refuse_at else "warn" if rate >= warn_at else "ok"


@dataclass(frozen=True)
class Window(Rates):
    """The gate's recent dispatches, summed."""

    dispatches: int
    sent: int
    failed: int
    bounces: int  # distinct addresses per dispatch, summed
    complaints: int
    since: dt.datetime | None  # when a person last lifted the gate


def recent_window(store: Store, config: Config) -> Window:
    """The last ``rate_dispatches`` dispatches that sent anything, since the last override."""
    s = load_settings(config)
    log = store.feedback
    since = log.nonce_time(*_ACK)
    ids = log.recent_dispatch_ids(s.rate_dispatches, since=since)
    rates = log.rates(ids).values()
    return Window(len(ids), sum(r.sent for r in rates), sum(r.failed for r in rates),
                  sum(r.bounces for r in rates), sum(r.complaints for r in rates), since)


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


def complaint_gate(store: Store, config: Config, window: Window | None = None) -> Gate:
    s = load_settings(config)
    w = window if window is not None else recent_window(store, config)
    level = grade(w.complaint_rate, s.complaint_warn_rate, s.complaint_refuse_rate,
                  measured=w.sent > 0)
    return Gate(level, w.complaint_rate, w.complaints, w.sent, w.dispatches,
                s.complaint_warn_rate, s.complaint_refuse_rate)


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


