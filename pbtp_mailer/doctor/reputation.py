"""[reputation]: bounce and complaint rates of the dispatches of the last 30 days,
against the mailbox providers' lines: complaints 0.1% (warn) / 0.3% (fail),
bounces 2% (warn) / 5% (fail). Complaints are unknown until feedback events
are recorded; the check says so instead of reporting 0.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

from pbtp_mailer.doctor.report import Check, Status

if TYPE_CHECKING:
    from pbtp_mailer.store import Store

__all__ = ["check_reputation", "BOUNCE_LIMITS", "COMPLAINT_LIMITS", "WINDOW_DAYS"]

BOUNCE_LIMITS = (0.02, 0.05)
COMPLAINT_LIMITS = (0.001, 0.003)
WINDOW_DAYS = 30


def _grade(rate: float, limits: tuple[float, float]) -> Status:
    return "fail" if rate >= limits[1] else "warn" if rate >= limits[0] else "ok"


def check_reputation(store: Store, *,
                     clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) \
        -> list[Check]:
    from pbtp_mailer.store.delivery_stats import DeliveryStats

    stats = DeliveryStats(store.engine)
    figures = stats.recent(clock() - dt.timedelta(days=WINDOW_DAYS))
    if not figures:
        return [Check("reputation", "ok", f"no dispatch in the last {WINDOW_DAYS} days")]
    sent = sum(f.sent for f in figures)
    failed = sum(f.failed for f in figures)
    total = sent + failed
    rate = failed / total if total else 0.0
    status = _grade(rate, BOUNCE_LIMITS)
    out = [Check("reputation", status, f"bounce rate {rate:.2%} ({failed} failed of {total} in "
                 f"{len(figures)} dispatches, last {WINDOW_DAYS} days; limits 2% / 5%)",
                 "" if status == "ok" else
                 "remove failed addresses (they are suppressed on permanent failure) and "
                 "re-confirm old lists before the next issue")]
    known = [f.complaints for f in figures if f.complaints is not None]
    if not stats.has_feedback_events() or not known:
        out.append(Check("reputation", "ok", "complaint rate unknown: no feedback events "
                         "recorded here (Google Postmaster Tools shows Gmail's; keep it under "
                         "0.1%, never 0.3%)"))
    else:
        c = sum(known) / sent if sent else 0.0
        cs = _grade(c, COMPLAINT_LIMITS)
        out.append(Check("reputation", cs, f"complaint rate {c:.3%} (limits 0.1% / 0.3%)",
                         "" if cs == "ok" else "send only to people who asked, say who you are "
                         "in the first line, keep one-click unsubscribe visible"))
    return out
