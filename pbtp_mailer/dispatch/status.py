"""``pbtp-mailer status``: what the ledger knows about an issue's dispatches.

Everything here is asked of the ``Ledger`` the store hands out; nothing reads
its tables directly.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pbtp_mailer.store import Store

__all__ = ["DispatchStatus", "issue_status", "recipients_in_state", "format_status"]


@dataclass
class DispatchStatus:
    issue_id: str
    list_name: str
    sender: str
    state: str
    note: str
    pause_reason: str | None
    counts: dict[str, int]
    total: int
    started_at: str | None
    finished_at: str | None
    last_sent_at: str | None
    throughput_per_s: float | None
    failures: list[dict[str, Any]] = field(default_factory=list)
    ambiguous: list[dict[str, Any]] = field(default_factory=list)
    #: send processes on this dispatch: live ones (host, pid, since, sent, rate), dead ones
    workers: list[dict[str, Any]] = field(default_factory=list)
    feedback: dict[str, Any] = field(default_factory=dict)  # feedback/gate.py: rates

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds") if value else None


def issue_status(store: Store, issue_id: str, message_id_domain: str = "",
                 list_name: str | None = None) -> list[DispatchStatus]:
    """Each dispatch of ``issue_id`` (or only the one to ``list_name``) with its counts."""
    from pbtp_mailer.feedback.gate import dispatch_feedback

    ledger = store.ledger(message_id_domain=message_id_domain)
    fleet = ledger.workers().workers()
    out = []
    for d in ledger.find(issue_id, list_name):
        counts = ledger.counts(d.id)
        first, last = ledger.timing(d.id)
        rate = None
        if first and last and counts["sent"] > 1 and last > first:
            rate = round(counts["sent"] / (last - first).total_seconds(), 1)
        out.append(DispatchStatus(
            issue_id=d.issue_id, list_name=d.list_name, sender=d.sender, state=d.state,
            note=d.note, pause_reason=d.pause_reason.value if d.pause_reason else None,
            counts=counts, total=sum(counts.values()),
            started_at=_iso(d.created_at), finished_at=_iso(d.finished_at),
            last_sent_at=_iso(last), throughput_per_s=rate,
            failures=[{"code": c, "reason": t, "count": n} for c, t, n in ledger.failures(d.id)],
            ambiguous=[{"email": r.email, "message_id": r.message_id,
                        "claimed_by": r.claimed_by, "since": _iso(r.updated_at)}
                       for r in ledger.ambiguous(d.id)],
            workers=[w.as_dict() for w in fleet
                     if w.issue_id == d.issue_id and w.list_name == d.list_name],
            feedback=dispatch_feedback(store, d.id),
        ))
    return out


def recipients_in_state(store: Store, issue_id: str, state: str,
                        list_name: str | None = None) -> list[dict[str, Any]]:
    """The rows of ``issue_id``'s dispatches in ``state`` (``status --recipients``)."""
    ledger = store.ledger()
    rows = []
    for d in ledger.find(issue_id, list_name):
        for r in ledger.rows(d.id, state):
            rows.append({"email": r.email, "list": d.list_name, "state": r.state,
                         "attempts": r.attempts, "sent_at": _iso(r.sent_at),
                         "message_id": r.message_id, "provider_id": r.provider_id,
                         "last_code": r.last_code, "last_text": r.last_text})
    return rows


def format_status(statuses: list[DispatchStatus]) -> str:
    from pbtp_mailer.feedback.gate import format_feedback

    lines = []
    for s in statuses:
        c = s.counts
        reason = f" ({s.pause_reason})" if s.pause_reason else ""
        lines.append(f"Issue {s.issue_id} -> list '{s.list_name}' via {s.sender}: "
                     f"{s.state}{reason}")
        lines.append(f"  recipients {s.total}: sent {c['sent']}, failed {c['failed']}, "
                     f"deferred {c['deferred']}, pending {c['pending']}, "
                     f"sending {c['sending']}, skipped {c['skipped']}"
                     + (f", rejected {c['rejected']}" if c.get("rejected") else ""))
        lines.append(f"  started {s.started_at or '-'}; last sent {s.last_sent_at or '-'}; "
                     f"finished {s.finished_at or '-'}"
                     + (f"; {s.throughput_per_s}/s" if s.throughput_per_s else ""))
        if s.feedback:
            lines.append(format_feedback(s.feedback))
        if s.note:
            lines.append(f"  note: {s.note}")
        lines.extend(_worker_lines(s.workers))
        for f in s.failures[:10]:
            code = f"{f['code']} " if f["code"] else ""
            lines.append(f"  failed x{f['count']}: {code}{f['reason']}")
        if s.ambiguous:
            lines.append(f"  AMBIGUOUS {len(s.ambiguous)}: left 'sending' by an interrupted run; "
                         "delivered or not is unknown (resend with --resend-unknown):")
            for a in s.ambiguous[:20]:
                lines.append(f"    {a['email']}  {a['message_id']}")
    return "\n".join(lines)


def _worker_lines(workers: list[dict[str, Any]]) -> list[str]:
    if not workers:
        return []
    live = [w for w in workers if w["alive"]]
    lines = [f"  workers: {len(live)} live, {len(workers) - len(live)} dead"]
    for w in workers:
        rate = f", {w['rate']}/s" if w["rate"] else ""
        if w["alive"]:
            lines.append(f"    live {w['host']} pid {w['pid']} since {w['started_at']}: "
                         f"sent {w['sent']}{rate}")
        else:
            lines.append(f"    dead {w['host']} pid {w['pid']} since {w['started_at']}, "
                         f"last heartbeat {w['heartbeat_at']}: sent {w['sent']}"
                         + (f" ({w['note']})" if w["note"] else ""))
    return lines
