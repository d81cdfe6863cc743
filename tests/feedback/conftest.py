"""A scratch project with a list and helpers to dispatch several issues, for feedback tests."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.dispatch.conftest import World, memory_sender  # noqa: F401  (fixture re-export)

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


class FeedbackWorld(World):
    def issue_copy(self, issue_id: str):
        """A copy of the March issue under another id (a later issue to the same list)."""
        text = self.issue.read_text(encoding="utf-8").replace('id: "2024-03"', f'id: "{issue_id}"')
        path = self.root / "issues" / f"{issue_id}.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    def send_issue(self, store, issue_id: str, sender=None):
        from pbtp_mailer.dispatch.dispatcher import Dispatcher, DispatchOptions, plan_dispatch
        from pbtp_mailer.senders.memory import MemorySender

        path = self.issue if issue_id == "2024-03" else self.issue_copy(issue_id)
        opts = DispatchOptions(list_name="members")
        plan = plan_dispatch(path, self.config, store, opts)
        return Dispatcher(plan, opts, sender=sender or MemorySender()).run()


@pytest.fixture()
def fworld(tmp_path):
    w = FeedbackWorld(tmp_path)
    yield w
    w.close()


def event(email: str, kind: str = "hard", source: str = "dsn", event_id: str | None = None,
          **kw):
    from pbtp_mailer.feedback import FeedbackEvent

    return FeedbackEvent(email=email, kind=kind, source=source,
                         event_id=event_id or f"{source}-{kind}-{email}",
                         received_at=kw.pop("received_at", T0), **kw)
