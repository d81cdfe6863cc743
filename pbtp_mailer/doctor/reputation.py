"""[reputation]: bounce and complaint rates of the recent dispatches, from the
feedback events, against the mailbox providers' lines: complaints 0.1% (warn) /
0.3% (fail), bounces 2% (warn) / 5% (fail).

The window, the sums and the complaint lines are the complaint gate's
(``feedback/gate.py``: the last ``rate_dispatches`` dispatches that sent
anything, ``complaint_warn_rate`` / ``complaint_refuse_rate``), so doctor
fails exactly when ``dispatch-due`` would refuse. With no bounce or complaint
ever reported (send-time refusals aside) the complaint rate is unknown, and the check says so instead of
reporting 0.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pbtp_mailer.doctor.report import Check, Status

if TYPE_CHECKING:
    from pbtp_mailer.config import Config
    from pbtp_mailer.store import Store

__all__ = ["check_reputation"]

_STATUS: dict[str, Status] = {"ok": "ok", "warn": "warn", "refuse": "fail"}


def check_reputation(store: Store, config: Config) -> list[Check]:
    from pbtp_mailer.feedback.gate import (
        BOUNCE_REFUSE_RATE,
        BOUNCE_WARN_RATE,
        complaint_gate,
        grade,
        recent_window,
    )

    w = recent_window(store, config)
    since = f" since a person lifted the complaint gate ({w.since:%Y-%m-%d %H:%M})" \
        if w.since else ""
    if not w.dispatches:
        return [Check("reputation", "ok", f"no dispatch has sent anything{since}")]
    tried = w.sent + w.failed
    status = _STATUS[grade(w.bounce_rate, BOUNCE_WARN_RATE, BOUNCE_REFUSE_RATE,
                           measured=tried > 0)]
    where = f"the last {w.dispatches} dispatch(es){since}"
    out = [Check("reputation", status,
                 f"bounce rate {w.bounce_rate:.2%} ({w.bounces} bounced of {tried} tried over "
                 f"{where}; limits {BOUNCE_WARN_RATE:.0%} / {BOUNCE_REFUSE_RATE:.0%})",
                 "" if status == "ok" else
                 "bounced addresses are suppressed; re-confirm old lists before the next "
                 "issue (pbtp-mailer bounces list)")]
    if not store.feedback.has_reports():
        out.append(Check("reputation", "ok", "complaint rate unknown: no bounce or complaint "
                         "report recorded here yet (set up bounces fetch or a provider webhook; "
                         "Google "
                         "Postmaster Tools shows Gmail's; keep it under 0.1%, never 0.3%)"))
        return out
    gate = complaint_gate(store, config, w)
    cs = _STATUS[gate.level]
    out.append(Check("reputation", cs, gate.text(),
                     "" if cs == "ok" else "send only to people who asked, say who you are "
                     "in the first line, keep one-click unsubscribe visible (pbtp-mailer "
                     "bounces list --kind complaint)"))
    return out
