"""Rates in ``status``; the complaint-rate warning (send) and refusal (dispatch-due)."""

from __future__ import annotations

import datetime as dt

from pbtp_mailer.feedback import record_events
from pbtp_mailer.feedback.gate import acknowledge_by_person, complaint_gate
from tests.feedback.conftest import event, feedback_section, run_cli
from tests.schedule.conftest import ScheduleWorld

T1 = dt.datetime(2026, 3, 5, 15, 0, tzinfo=dt.UTC)
T2 = T1 + dt.timedelta(days=30)


def _world(tmp_path):
    w = ScheduleWorld(tmp_path)
    feedback_section(w, "complaint_warn_rate = 0.01\ncomplaint_refuse_rate = 0.03\n")
    return w


def test_status_shows_rates_and_cron_refuses_until_a_person_sends(tmp_path):
    from pbtp_mailer.senders.memory import MemorySender

    w = _world(tmp_path)
    try:
        emails = w.make_list(100)
        store = w.store()
        first = w.schedule(T1.isoformat(), issue_id="2026-03")
        assert w.due(T1, sender=MemorySender()).problems == []
        record_events(store, [event(e, "complaint", source="arf", event_id=f"c{i}")
                              for i, e in enumerate(emails[:3])])
        record_events(store, [event(emails[3], "hard", event_id="h1")])
        r = run_cli(w, "status", str(first))
        assert ("  feedback: bounces 1 hard + 0 soft (1.00%), complaints 3 (3.00%), "
                "provider unsubscribes 0") in r.output
        gate = complaint_gate(store, w.config)
        assert (gate.level, gate.complaints, gate.sent) == ("refuse", 3, 100)

        w.schedule(T2.isoformat(), issue_id="2026-04")
        report = w.due(T2, sender=MemorySender())
        assert report.reports == [] and report.exit_code == 1
        assert report.problems == [
            "2026-04 -> members: not started: complaint rate 3.00% (3 of 100 sent) over the "
            "last 1 dispatch(es); mailbox providers act at 3.0% and want below 1.0% (look at "
            "pbtp-mailer bounces list --kind complaint; a person running pbtp-mailer send "
            "lifts this)"]
        # send shows the warning with the plan; a person sending lifts the refusal
        warnings = w.plan(store)[0].warnings
        assert any("complaint rate 3.00%" in x and "refuses new dispatches" in x for x in warnings)
        assert acknowledge_by_person(store, w.config) is True
        assert complaint_gate(store, w.config).level == "ok"
        report = w.due(T2 + dt.timedelta(minutes=5), sender=MemorySender())
        assert report.problems == [] and len(report.reports) == 1
    finally:
        w.close()


def test_warn_level_warns_but_sends(tmp_path):
    from pbtp_mailer.senders.memory import MemorySender

    w = _world(tmp_path)
    try:
        emails = w.make_list(100)
        store = w.store()
        w.schedule(T1.isoformat(), issue_id="2026-03")
        w.due(T1, sender=MemorySender())
        record_events(store, [event(emails[0], "complaint", source="arf")])
        w.schedule(T2.isoformat(), issue_id="2026-04")
        report = w.due(T2, sender=MemorySender())
        assert len(report.reports) == 1 and report.reports[0].sent == 99
        assert report.problems == [
            "2026-04 -> members: warning: complaint rate 1.00% (1 of 100 sent) over the last "
            "1 dispatch(es); mailbox providers act at 3.0% and want below 1.0%"]
        assert acknowledge_by_person(store, w.config) is False  # nothing to lift
    finally:
        w.close()
