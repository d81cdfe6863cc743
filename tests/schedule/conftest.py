"""Scheduled issues in a scratch project (the dispatch tests' World) and a clock."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from tests.conftest import MARCH
from tests.dispatch.conftest import World


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


class ScheduleWorld(World):
    """World plus scheduled issue files and in-process ``dispatch-due`` runs."""

    def schedule(self, send_at: str, *, issue_id: str = "2024-03", lists=("members",),
                 sender: str | None = None, name: str | None = None):
        """Write issues/<name>.yaml: the March issue with this id and schedule."""
        text = MARCH.read_text(encoding="utf-8")
        text = re.sub(r'^id: "2024-03"$', f'id: "{issue_id}"', text, count=1, flags=re.M)
        block = f"\nschedule:\n  send_at: {send_at}\n  lists: [{', '.join(lists)}]\n"
        if sender:
            block += f'  sender: "{sender}"\n'
        path = self.root / "issues" / f"{name or issue_id}.yaml"
        path.write_text(text.rstrip("\n") + "\n" + block, encoding="utf-8")
        return path

    @staticmethod
    def send_at_place(path) -> str:
        """FILE:LINE:COL of the send_at value in ``path``."""
        lines = path.read_text(encoding="utf-8").splitlines()
        n = next(i for i, line in enumerate(lines) if line.startswith("  send_at: "))
        return f"{path}:{n + 1}:{len('  send_at: ') + 1}"

    def due(self, now: dt.datetime | str, sender=None, log=None, **kw):
        """One dispatch-due run at ``now`` (time frozen but for the retry sleeps)."""
        from pbtp_mailer.schedule.run import run_due
        from pbtp_mailer.schedule.runlog import RunLog
        from pbtp_mailer.schedule.state import offset_clock

        start = utc(now) if isinstance(now, str) else now
        ticks = [0.0]

        def monotonic() -> float:
            return ticks[0]

        def sleep(seconds: float) -> None:
            ticks[0] += seconds

        clock = offset_clock(start, monotonic)
        factory = (lambda _name: sender) if sender is not None else None
        return run_due(self.config, clock=clock, sleep=sleep, sender_factory=factory,
                       log=log or RunLog(self.root / "dispatch.log", clock), **kw)

    def log_lines(self) -> list[str]:
        path = self.root / "dispatch.log"
        return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


@pytest.fixture()
def sworld(tmp_path):
    w = ScheduleWorld(tmp_path)
    # the sample issue has no schedule: keep it, it must never be sent by cron
    yield w
    w.close()


@pytest.fixture()
def memory():
    from pbtp_mailer.senders.memory import MemorySender

    return MemorySender()
