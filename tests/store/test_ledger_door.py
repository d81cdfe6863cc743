"""The ledger is the only door to dispatch state (issue 10, item 2): outside ``store/``
no module reads the ledger's tables, builds a ``Ledger`` by hand or speaks SQLAlchemy
to the dispatch state; they ask ``Store.ledger(clock)``."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "pbtp_mailer"
#: the features that use dispatch state
USERS = ["dispatch", "schedule", "editor/archive.py", "cli/dispatch_cmds.py",
         "cli/schedule_cmds.py"]
FORBIDDEN = re.compile(r"ledger_schema|schedule_schema|ledger_sql|\bLedger\(|sqlalchemy|"
                       r"\.engine\b|select\(")


def _sources() -> list[Path]:
    out: list[Path] = []
    for name in USERS:
        path = PACKAGE / name
        out += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return out


def test_only_the_store_touches_ledger_tables() -> None:
    offenders = [f"{p.relative_to(PACKAGE)}:{n}: {line.strip()}"
                 for p in _sources()
                 for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if FORBIDDEN.search(line)]
    assert offenders == []


def test_no_function_in_the_core_is_long_without_saying_why() -> None:
    """No function in dispatch/ or schedule/ over 60 lines (issue 10, item 3)."""
    import ast

    long = []
    for path in [*sorted((PACKAGE / "dispatch").rglob("*.py")),
                 *sorted((PACKAGE / "schedule").rglob("*.py"))]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} "
                                f"({length} lines)")
    assert long == []
