"""``pbtp-mailer report ISSUE.yaml``: one self-contained HTML page about a dispatch.

Deliveries over time, bounces and complaints over time, outcomes by
recipient domain, top bounce reasons and the unsubscribes that followed the
issue (addresses that got it and unsubscribed afterwards). Charts are
inline SVG (``svg.py``); the page makes no network request (its CSP says
so), reads well in dark mode and narrow screens, and repeats every chart's
numbers in a table. Addresses never appear: domains and counts only.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

from pbtp_mailer.feedback.svg import Series, bar_chart, line_chart
from pbtp_mailer.store.erasure import ERASED_PREFIX

if TYPE_CHECKING:
    from pbtp_mailer.store import Store
    from pbtp_mailer.store.feedback import IssueRows

__all__ = ["ReportData", "collect", "render_report", "write_report"]

MAX_POINTS = 240


@dataclass
class ReportData:
    issue_id: str
    subject: str
    lists: list[str]
    rows: IssueRows
    generated: dt.datetime


def collect(store: Store, issue_id: str, subject: str) -> ReportData:
    rows = store.feedback.issue_rows(issue_id)
    return ReportData(issue_id, subject, [d[1] for d in rows.dispatches], rows,
                      dt.datetime.now(dt.UTC))


def _domain(key: str) -> str:
    if key.startswith(ERASED_PREFIX):  # erased on request: counted, but no domain either
        return "(erased)"
    return key.rpartition("@")[2] or "?"


def _cumulative(times: list[dt.datetime]) -> list[tuple[float, float]]:
    """A cumulative count over time, thinned to at most MAX_POINTS points."""
    ts = sorted(t.timestamp() for t in times)
    if not ts:
        return []
    every = max(1, len(ts) // MAX_POINTS)
    pts = [(t, float(i + 1)) for i, t in enumerate(ts) if i % every == 0 or i == len(ts) - 1]
    return [(ts[0], 0.0), *pts]


def _reason(status: str, text: str) -> str:
    text = re.sub(r"<[^>]*@[^>]*>|\S+@\S+", "<address>", text or "")  # no addresses on the page
    text = re.sub(r"\s+", " ", text).strip()[:90]
    return f"{status} {text}".strip() or "(no reason given)"


def _summary(d: ReportData) -> dict[str, int]:
    r = d.rows
    states = Counter(s for _, s, _, _, _ in r.deliveries)
    kinds: dict[str, set[str]] = defaultdict(set)
    for key, kind, *_ in r.events:
        kinds[kind].add(key)
    return {"recipients": len(r.deliveries), "sent": states["sent"],
            "failed": states["failed"], "waiting": states["pending"] + states["deferred"]
            + states["claimed"] + states["sending"],
            "hard": len(kinds["hard"]), "soft": len(kinds["soft"] - kinds["hard"]),
            "complaints": len(kinds["complaint"]),
            "unsubscribes": len({k for k, _, _ in r.unsubscribes} | kinds["unsubscribe"])}


def _domains(d: ReportData, top: int = 10) -> tuple[list[str], list[Series]]:
    by_key: dict[str, str] = {}
    for key, kind, *_ in d.rows.events:
        if kind in ("hard", "soft", "complaint"):
            if by_key.get(key) != "complaint":
                by_key[key] = "complaint" if kind == "complaint" else "bounce"
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for key, state, *_ in d.rows.deliveries:
        outcome = ("failed" if state == "failed" else by_key.get(key, "delivered")
                   if state == "sent" else "waiting")
        counts[_domain(key)][outcome] += 1
    names = sorted(counts, key=lambda n: (-sum(counts[n].values()), n))[:top]
    order = ("delivered", "bounce", "complaint", "failed", "waiting")
    labels = ("delivered", "bounced later", "complained", "refused at send", "not yet sent")
    series = [Series(label, [(i, float(counts[n][o])) for i, n in enumerate(names)])
              for o, label in zip(order, labels, strict=True)]
    return names, series


def _reasons(d: ReportData, top: int = 10) -> list[tuple[str, int]]:
    c: Counter[str] = Counter()
    seen = set()
    for key, kind, status, diag, _ in d.rows.events:
        if kind in ("hard", "soft"):
            c[_reason(status, diag)] += 1
            seen.add(key)
    for key, state, _, code, text in d.rows.deliveries:
        if state == "failed" and key not in seen:  # refused at send without an smtp event
            c[_reason(str(code or ""), text)] += 1
    return c.most_common(top)


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f'<th scope="col">{escape(h)}</th>' for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f'<div class="scroll"><table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>'


def _pct(n: int, of: int) -> str:
    return f"{n / of:.2%}" if of else "–"


def _sections(d: ReportData) -> list[str]:
    s = _summary(d)
    r = d.rows
    out = []
    sent_times = [t for _, st, t, _, _ in r.deliveries if st == "sent" and t]
    out.append("<section><h2>Deliveries over time</h2>" + line_chart(
        [Series("sent (cumulative)", _cumulative(sent_times))],
        title="Messages accepted over time") + "</section>")
    kinds = ("hard", "soft", "complaint", "unsubscribe")
    names = ("hard bounces", "soft bounces", "complaints", "provider unsubscribes")
    ev_series = [Series(n, _cumulative([t for _, kk, _, _, t in r.events if kk == k]))
                 for k, n in zip(kinds, names, strict=True)]
    ev_series = [x for x in ev_series if x.points] or [Series("no events yet", [])]
    out.append("<section><h2>Bounces and complaints over time</h2>" + line_chart(
        ev_series, title="Bounces and complaints over time (cumulative)", step=True)
        + _table(["kind", "events"], [[n, str(sum(1 for e in r.events if e[1] == k))]
                                      for k, n in zip(kinds, names, strict=True)])
        + "</section>")
    doms, dseries = _domains(d)
    out.append("<section><h2>Outcomes by recipient domain</h2>"
               + (bar_chart(doms, dseries, title="Outcomes of the ten largest recipient domains")
                  if doms else "<p>No recipients yet.</p>")
               + _table(["domain", *[x.name for x in dseries]],
                        [[n, *[_fmt_int(dict(x.points).get(i, 0)) for x in dseries]]
                         for i, n in enumerate(doms)]) + "</section>")
    reasons = _reasons(d)
    out.append("<section><h2>Top bounce reasons</h2>"
               + (bar_chart([t for t, _ in reasons],
                            [Series("addresses", [(i, float(n)) for i, (_, n)
                                                  in enumerate(reasons)])],
                            title="Most frequent bounce reasons") if reasons
                  else "<p>No bounces recorded.</p>")
               + _table(["reason", "count"], [[t, str(n)] for t, n in reasons]) + "</section>")
    by_source = Counter(src for _, src, _ in r.unsubscribes)
    out.append("<section><h2>Unsubscribes after this issue</h2>"
               f"<p>{s['unsubscribes']} of {s['sent']} recipients "
               f"({_pct(s['unsubscribes'], s['sent'])}) unsubscribed after receiving it.</p>"
               + (line_chart([Series("unsubscribes (cumulative)",
                                     _cumulative([t for _, _, t in r.unsubscribes]))],
                             title="Unsubscribes over time", step=True)
                  if r.unsubscribes else "")
               + _table(["how", "count"], [[k, str(v)] for k, v in by_source.most_common()])
               + "</section>")
    return out


def _fmt_int(v: float) -> str:
    return f"{int(v):,}"


CSS = """
:root{color-scheme:light dark;--bg:#fff;--fg:#1a1a1a;--muted:#555;--grid:#ddd;--card:#f6f7f9;
--c0:#1f6feb;--c1:#d1242f;--c2:#9a6700;--c3:#8250df;--c4:#57606a;--c5:#1a7f37}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9da7b3;
--grid:#30363d;--card:#161b22;--c0:#58a6ff;--c1:#ff7b72;--c2:#e3b341;--c3:#bc8cff;
--c4:#8b949e;--c5:#3fb950}}
*{box-sizing:border-box}body{margin:0;padding:1rem;background:var(--bg);color:var(--fg);
font:1rem/1.5 system-ui,-apple-system,"Segoe UI",sans-serif}main{max-width:60rem;margin:auto}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .4rem}
p.meta{color:var(--muted);margin:.2rem 0 1rem;overflow-wrap:anywhere}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(8.5rem,1fr));gap:.5rem}
.card{background:var(--card);border-radius:.4rem;padding:.5rem .7rem}
.card b{display:block;font-size:1.3rem}.card span{color:var(--muted);font-size:.85rem}
svg.chart{display:block;width:100%;height:auto;max-width:100%}
svg .lbl{fill:var(--fg);font-size:11px}svg .grid{stroke:var(--grid);stroke-width:1}
svg .ln{fill:none;stroke-width:2}
svg .s0{fill:var(--c0);stroke:var(--c0)}svg .s1{fill:var(--c1);stroke:var(--c1)}
svg .s2{fill:var(--c2);stroke:var(--c2)}svg .s3{fill:var(--c3);stroke:var(--c3)}
svg .s4{fill:var(--c4);stroke:var(--c4)}svg .s5{fill:var(--c5);stroke:var(--c5)}
svg polyline.ln{fill:none}
.scroll{overflow-x:auto;max-width:100%}table{border-collapse:collapse;margin:.5rem 0;
font-size:.9rem}th,td{text-align:left;padding:.2rem .6rem;border-bottom:1px solid var(--grid);
overflow-wrap:anywhere}
"""


def render_report(d: ReportData) -> str:
    s = _summary(d)
    cards = [("recipients", s["recipients"]), ("sent", s["sent"]),
             ("refused at send", s["failed"]), ("hard bounces", s["hard"]),
             ("soft bounces", s["soft"]), ("complaints", s["complaints"]),
             ("unsubscribes", s["unsubscribes"])]
    card_html = "".join(f'<div class="card"><b>{v:,}</b><span>{escape(k)}</span></div>'
                        for k, v in cards)
    rates = (f"bounce rate {_pct(s['hard'] + s['soft'], s['sent'])}, complaint rate "
             f"{_pct(s['complaints'], s['sent'])}")
    head = (f"<h1>Issue {escape(d.issue_id)}</h1><p class=\"meta\">{escape(d.subject)}<br>"
            f"List(s): {escape(', '.join(d.lists) or 'not dispatched')} · {rates} · generated "
            f"{d.generated:%Y-%m-%d %H:%M} UTC</p><div class=\"cards\">{card_html}</div>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "style-src 'unsafe-inline'; img-src data:\">"
            f"<title>Dispatch report: {escape(d.issue_id)}</title><style>{CSS}</style></head>"
            f"<body><main>{head}{''.join(_sections(d))}</main></body></html>\n")


def write_report(store: Store, issue_id: str, subject: str, out: str) -> ReportData:
    """Write the report to ``out`` atomically (a temp file renamed: never half written)."""
    import os
    import tempfile
    from pathlib import Path

    data = collect(store, issue_id, subject)
    html = render_report(data)
    target = Path(out)
    fd, tmp = tempfile.mkstemp(prefix=".report-", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(html)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return data
