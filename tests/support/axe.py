"""axe-core (vendored: ``tests/support/axe/axe.min.js``, v4.12.1, MPL-2.0) for Playwright pages.

    from tests.support.axe import axe_violations
    assert axe_violations(page) == []

Runs the WCAG 2.0/2.1 A and AA rules and returns ``[(rule id, [targets])]``.
The pages send a strict CSP (no scripts), so open them in a context made with
``bypass_csp=True`` for the check. Updating: ``npm pack axe-core@VERSION`` and
copy ``package/axe.min.js`` and ``package/LICENSE`` here.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["axe_violations", "AXE_TAGS"]

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@cache
def _source() -> str:
    return (Path(__file__).parent / "axe" / "axe.min.js").read_text(encoding="utf-8")


def axe_violations(page: Any) -> list[tuple[str, list[Any]]]:
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(_source())
    found = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return r.violations.map(v => [v.id, v.nodes.map(n => n.target)]);
        }""", AXE_TAGS)
    return [(v[0], v[1]) for v in found]
