"""axe-core (vendored: tests/support/axe.min.js, v4.12.1, MPL-2.0, from the
axe-playwright-python wheel) run in a Playwright page::

    violations = axe_violations(page)   # [] when the page passes

The WCAG 2.x A and AA rules run (not axe's best-practice rules such as
``landmark-one-main``, which ask a web page, not an e-mail, for a <main>).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["AXE_JS", "WCAG_TAGS", "axe_violations"]

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]

AXE_JS = Path(__file__).resolve().with_name("axe.min.js")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Every axe-core violation of the page: ``{id, impact, help, nodes: [html...]}``."""
    page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate("async tags => await axe.run(document, {resultTypes: ['violations'], "
                           "runOnly: {type: 'tag', values: tags}})", WCAG_TAGS)
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["html"][:200] for n in v["nodes"]]} for v in result["violations"]]
