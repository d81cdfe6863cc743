"""One check's verdict and the report that collects them (text lines or JSON)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Literal

__all__ = ["Check", "Report", "Status"]

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    """``id`` names the concern (spf, dkim, ...); ``fix`` is set for warn and fail."""

    id: str
    status: Status
    message: str
    fix: str = ""


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    def add(self, check: Check | list[Check]) -> None:
        self.checks.extend(check if isinstance(check, list) else [check])

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def lines(self) -> list[str]:
        """``ok|warn|fail  [id]  message``, then ``      fix: ...`` under warn/fail."""
        out = []
        for c in self.checks:
            out.append(f"{c.status:<4}  [{c.id}]  {c.message}")
            if c.fix and c.status != "ok":
                out.extend(f"      fix: {line}" for line in c.fix.splitlines())
        return out

    def as_json(self) -> str:
        return json.dumps({"checks": [asdict(c) for c in self.checks]}, indent=2)
