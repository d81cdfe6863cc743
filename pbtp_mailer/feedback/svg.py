"""A small dependency-free SVG chart renderer for the dispatch report.

Two shapes cover the report: ``line_chart`` (values over time, one or more
series, optionally stepped) and ``bar_chart`` (horizontal bars, stacked by
series, one row per category). Charts scale with their container (a
``viewBox`` and ``width: 100%``), take their colours from CSS classes
(``s0``..``s5``) so the page's light and dark themes apply, and carry a
``<title>`` and ``role="img"`` with a text summary; the report also shows
the numbers in a table. Every label is escaped.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["Series", "line_chart", "bar_chart", "nice_max"]


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]  # (x, y); x in any unit (epoch seconds)


def nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5, 5 × 10^n)."""
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for m in (1, 2, 2.5, 5, 10):
        if value <= m * exp:
            return m * exp
    return 10 * exp


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 or v == int(v) else f"{v:.1f}"


def _svg_open(w: int, h: int, title: str, desc: str) -> list[str]:
    return [f'<svg class="chart" viewBox="0 0 {w} {h}" role="img" '
            f'aria-label="{escape(title)}" preserveAspectRatio="xMinYMin meet">',
            f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>"]


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    out = []
    for i, name in enumerate(names):
        out.append(f'<rect class="s{i % 6}" x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10"/>'
                   f'<text class="lbl" x="{x + 14:.1f}" y="{y:.1f}">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    return out


def line_chart(series: Sequence[Series], *, title: str, x_is_time: bool = True,
               width: int = 640, height: int = 260, step: bool = False) -> str:
    """Series over x; with ``x_is_time`` the x values are epoch seconds shown as UTC times."""
    left, right, top, bottom = 56, 12, 28, 34
    pw, ph = width - left - right, height - top - bottom
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points]
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x1 <= x0:
        x1 = x0 + 1
    ymax = nice_max(max(ys, default=0))
    sx = lambda x: left + (x - x0) / (x1 - x0) * pw  # noqa: E731
    sy = lambda y: top + ph - y / ymax * ph  # noqa: E731
    total = ", ".join(f"{s.name}: {_fmt(max((y for _, y in s.points), default=0))} at most"
                      for s in series)
    out = _svg_open(width, height, title, total)
    for i in range(6):
        v = ymax * i / 5
        y = sy(v)
        out.append(f'<line class="grid" x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}"/>'
                   f'<text class="lbl" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f"{_fmt(v)}</text>")
    span = x1 - x0
    fmt = "%H:%M:%S" if span < 3600 else "%d %b %H:%M" if span < 3 * 86400 else "%d %b %Y"
    for i in range(4):
        xv = x0 + span * i / 3
        label = (dt.datetime.fromtimestamp(xv, dt.UTC).strftime(fmt) if x_is_time
                 else _fmt(xv))
        anchor = "start" if i == 0 else "end" if i == 3 else "middle"
        out.append(f'<text class="lbl" x="{sx(xv):.1f}" y="{top + ph + 18}" '
                   f'text-anchor="{anchor}">{escape(label)}</text>')
    for i, s in enumerate(series):
        pts = sorted(s.points)
        if not pts:
            continue
        coords: list[str] = []
        for j, (x, y) in enumerate(pts):
            if step and j:
                coords.append(f"{sx(x):.1f},{sy(pts[j - 1][1]):.1f}")
            coords.append(f"{sx(x):.1f},{sy(y):.1f}")
        out.append(f'<polyline class="ln s{i % 6}" points="{" ".join(coords)}"/>')
        if len(pts) == 1:
            out.append(f'<circle class="s{i % 6}" cx="{sx(pts[0][0]):.1f}" '
                       f'cy="{sy(pts[0][1]):.1f}" r="3"/>')
    out.extend(_legend([s.name for s in series], left, 16))
    out.append("</svg>")
    return "".join(out)


def bar_chart(categories: Sequence[str], series: Sequence[Series], *, title: str,
              width: int = 640, bar: int = 18) -> str:
    """Horizontal stacked bars: ``series[k].points[i] = (i, value)`` for ``categories[i]``."""
    label_w = min(220, 12 + 7 * max((len(c) for c in categories), default=4))
    left, right, top = label_w, 56, 28
    height = top + len(categories) * (bar + 8) + 10
    pw = width - left - right
    totals = [sum(dict(s.points).get(i, 0.0) for s in series) for i in range(len(categories))]
    vmax = nice_max(max(totals, default=0))
    desc = "; ".join(f"{c}: {_fmt(t)}" for c, t in zip(categories, totals, strict=True))
    out = _svg_open(width, height, title, desc)
    for i, cat in enumerate(categories):
        y = top + i * (bar + 8)
        short = cat if len(cat) <= 30 else cat[:29] + "…"
        out.append(f'<text class="lbl" x="{left - 6}" y="{y + bar * 0.7:.1f}" '
                   f'text-anchor="end">{escape(short)}</text>')
        x = float(left)
        for k, s in enumerate(series):
            v = dict(s.points).get(i, 0.0)
            if v <= 0:
                continue
            w = v / vmax * pw
            out.append(f'<rect class="s{k % 6}" x="{x:.1f}" y="{y}" width="{max(w, 1):.1f}" '
                       f'height="{bar}"><title>{escape(cat)}: {escape(s.name)} {_fmt(v)}'
                       "</title></rect>")
            x += w
        out.append(f'<text class="lbl" x="{x + 4:.1f}" y="{y + bar * 0.7:.1f}">'
                   f"{_fmt(totals[i])}</text>")
    out.extend(_legend([s.name for s in series], left, 16))
    out.append("</svg>")
    return "".join(out)
