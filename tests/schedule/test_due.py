"""dispatch-due in-process with an injected clock and the memory sender."""

from __future__ import annotations

import datetime as dt

import pytest

from pbtp_mailer.schedule.lock import LockBusyError, RunLock
from pbtp_mailer.schedule.run import LOCK_FILE
from pbtp_mailer.senders.memory import MemorySender
from tests.schedule.conftest import ScheduleWorld, utc

SEND_AT = "2026-03-05T09:00:00"  # CST: 15:00Z
AT = utc("2026-03-05T15:00:00Z")


def sent_to(sender: MemorySender) -> list[str]:
    return [r for m in sender.outbox for r in m.rcpt_to]


def dispatches(world) -> list[tuple[str, str, str]]:
    from sqlalchemy import text

    with world.store().engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "select issue_id, list_name, state from dispatches order by id"))]


def test_not_due_one_second_before_due_exactly_at(sworld, memory):
    emails = sworld.make_list(20)
    sworld.schedule(SEND_AT, issue_id="2026-03")
    report = sworld.due(AT - dt.timedelta(seconds=1), sender=memory)
    assert (report.problems, report.reports, sent_to(memory)) == ([], [], [])
    assert sworld.log_lines() == []  # nothing happened: nothing logged
    report = sworld.due(AT, sender=memory)
    assert report.problems == [] and report.exit_code == 0
    assert sorted(sent_to(memory)) == emails
    assert dispatches(sworld) == [("2026-03", "members", "done")]
    assert sworld.log_lines() == [
        "2026-03-05T15:00:00Z issue=2026-03 list=members event=dispatch why=due sender=outbox "
        "recipients=20",
        "2026-03-05T15:00:00Z issue=2026-03 list=members event=sent sent=20 failed=0 deferred=0 "
        "skipped=0 remaining=0 ambiguous=0 state=done elapsed=" + sworld.log_lines()[1]
        .rsplit("elapsed=", 1)[1],
    ]
    again = sworld.due(AT + dt.timedelta(minutes=5), sender=memory)
    assert (again.problems, again.reports, len(sent_to(memory))) == ([], [], 20)


def test_issue_without_schedule_is_never_sent(sworld, memory):
    sworld.make_list(5)
    report = sworld.due("2030-01-01T00:00:00Z", sender=memory)  # 2024-03 has no schedule
    assert (report.problems, sent_to(memory), dispatches(sworld)) == ([], [], [])


@pytest.mark.parametrize("send_at, before, at", [
    # spring forward: 09:00 CDT is 14:00Z (the day before it was 15:00Z)
    ("2026-03-08T09:00:00", "2026-03-08T13:59:59Z", "2026-03-08T14:00:00Z"),
    # the first local minute after the gap
    ("2026-03-08T03:00:00", "2026-03-08T07:59:59Z", "2026-03-08T08:00:00Z"),
    # fall back: 09:00 CST is 15:00Z again
    ("2026-11-01T09:00:00", "2026-11-01T14:59:59Z", "2026-11-01T15:00:00Z"),
    # the second 01:30 of the night, written with its offset
    ("2026-11-01T01:30:00-06:00", "2026-11-01T07:29:59Z", "2026-11-01T07:30:00Z"),
])
def test_dst_transitions(sworld, memory, send_at, before, at):
    sworld.make_list(3)
    sworld.schedule(send_at, issue_id="dst")
    assert sworld.due(before, sender=memory).reports == []
    assert [r.sent for r in sworld.due(at, sender=memory).reports] == [3]


def test_stale_window_edges(sworld, memory):
    sworld.make_list(4)
    path = sworld.schedule(SEND_AT, issue_id="2026-03")
    edge = AT + dt.timedelta(hours=24)
    late = edge + dt.timedelta(seconds=1)
    report = sworld.due(late, sender=memory)
    expected = (
        f"{sworld.send_at_place(path)}: schedule.send_at: not sent to 'members': "
        "2026-03-05 09:00 CST (15:00Z) is 24.0 h past (stale_after_hours = 24; first seen due "
        f"2026-03-06 15:00Z); send it by hand (pbtp-mailer send {path} --list members) or "
        "move send_at")
    assert report.problems == [expected] and report.exit_code == 1
    assert sent_to(memory) == [] and dispatches(sworld) == []
    # reported at every run, first-seen time kept
    again = sworld.due(late + dt.timedelta(hours=3), sender=memory)
    assert again.problems == [expected.replace("24.0 h", "27.0 h")]
    assert [line.split(" event=")[1].split(" ")[0] for line in sworld.log_lines()] == [
        "stale", "stale"]
    # exactly at the edge it is still sent
    fresh = ScheduleWorld(sworld.root.parent / "edge")
    try:
        fresh.make_list(4)
        fresh.schedule(SEND_AT, issue_id="2026-03")
        other = MemorySender()
        assert [r.sent for r in fresh.due(edge, sender=other).reports] == [4]
    finally:
        fresh.close()


def test_configurable_window(tmp_path, memory):
    w = ScheduleWorld(tmp_path, "stale_after_hours = 2\nbackoff_base_seconds = 0.01\n")
    try:
        w.make_list(2)
        w.schedule(SEND_AT, issue_id="2026-03")
        report = w.due(AT + dt.timedelta(hours=2, seconds=1), sender=memory)
        assert "stale_after_hours = 2;" in report.problems[0]
        assert [r.sent for r in w.due(AT + dt.timedelta(hours=2), sender=memory).reports] == [2]
    finally:
        w.close()


def test_moving_the_date_re_evaluates(sworld, memory):
    sworld.make_list(3)
    sworld.schedule(SEND_AT, issue_id="2026-03")
    now = AT + dt.timedelta(days=3)
    assert len(sworld.due(now, sender=memory).problems) == 1
    sworld.schedule("2026-03-08T09:00:00-05:00", issue_id="2026-03")  # 14:00Z, 1 h ago
    report = sworld.due(now, sender=memory)
    assert report.problems == [] and [r.sent for r in report.reports] == [3]
    events = [line.split(" event=")[1].split(" ")[0] for line in sworld.log_lines()]
    assert events == ["stale", "rescheduled", "dispatch", "sent"]


def test_stale_issue_sent_by_hand_is_continued_by_cron_without_newcomers(sworld, memory):
    emails = sworld.make_list(20)
    sworld.schedule(SEND_AT, issue_id="2024-03")  # World.issue: what `send` sends
    late = AT + dt.timedelta(days=2)
    assert sworld.due(late, sender=memory).exit_code == 1
    store = sworld.store()
    by_hand = MemorySender()
    first = sworld.run(store, sender=by_hand, limit=5)  # a person: `send ... --limit 5`
    assert first.sent == 5
    store.add_subscriber("members", "newcomer@example.com")
    report = sworld.due(late + dt.timedelta(minutes=5), sender=memory)
    assert report.problems == [] and [r.sent for r in report.reports] == [15]
    assert sorted(sent_to(by_hand) + sent_to(memory)) == emails  # nobody twice, no newcomer
    assert dispatches(sworld) == [("2024-03", "members", "done")]


def test_newcomers_join_a_dispatch_that_is_still_fresh(sworld, memory):
    sworld.make_list(6)
    sworld.schedule(SEND_AT, issue_id="2024-03")
    sworld.run(sworld.store(), sender=MemorySender(), limit=2)  # started by hand, on time
    sworld.store().add_subscriber("members", "newcomer@example.com")
    report = sworld.due(AT + dt.timedelta(hours=1), sender=memory)
    assert [r.sent for r in report.reports] == [5]
    assert "newcomer@example.com" in sent_to(memory)


def test_deferred_retries_of_earlier_dispatches(sworld):
    emails = sworld.make_list(10)
    store = sworld.store()
    flaky = MemorySender(fail={emails[3]: [451, "4.3.0 try later"]})
    report = sworld.run(store, sender=flaky, in_run_retry_seconds=0)  # by hand, no schedule
    assert (report.sent, report.deferred) == (9, 1)
    store.add_subscriber("members", "newcomer@example.com")
    store.add_subscriber("members", "late@example.com")
    fixed = MemorySender()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    due = sworld.due(later, sender=fixed)
    assert due.problems == [] and sent_to(fixed) == [emails[3]]
    assert dispatches(sworld) == [("2024-03", "members", "done")]
    assert "why=retry" in sworld.log_lines()[0]


def test_retries_leave_a_dispatch_with_pending_rows_to_its_person(sworld):
    sworld.make_list(10)
    store = sworld.store()
    sworld.run(store, sender=MemorySender(fail={"member00000@example.com": [451, "later"]}),
               limit=3, in_run_retry_seconds=0)
    idle = MemorySender()
    assert sworld.due(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1), sender=idle).reports == []
    assert sent_to(idle) == []


def test_failures_and_pauses_are_one_line_each(sworld):
    emails = sworld.make_list(5)
    sworld.schedule(SEND_AT, issue_id="2026-03", name="a")
    sworld.schedule(SEND_AT, issue_id="2026-04", name="b", lists=("members", "nosuchlist"))
    bouncing = MemorySender(fail={emails[0]: [550, "5.1.1 no such user"]})
    report = sworld.due(AT, sender=bouncing)
    path_a = sworld.root / "issues" / "a.yaml"
    assert report.problems == [
        f"2026-03 -> members: 1 recipients failed permanently (pbtp-mailer status {path_a} "
        "--recipients failed)",
        "2026-04 -> nosuchlist: " + report.problems[1].split(": ", 1)[1],
    ]
    assert "nosuchlist" in report.problems[1] and "\n" not in report.problems[1]
    assert report.exit_code == 1
    # a paused dispatch
    sworld.schedule(SEND_AT, issue_id="2026-05", name="c")
    down = sworld.due(AT + dt.timedelta(minutes=5), sender=MemorySender(down=True))
    assert len(down.problems) == 2  # still the unknown list, and the pause
    assert down.problems[1].startswith("2026-05 -> members: dispatch of 2026-05 to 'members' "
                                       "paused: memory: connection refused (scripted)")


def test_a_held_lock_stops_the_run(sworld, memory):
    sworld.make_list(2)
    sworld.schedule(SEND_AT, issue_id="2026-03")
    with RunLock(sworld.config.data_dir / LOCK_FILE):
        with pytest.raises(LockBusyError, match="another dispatch-due is running"):
            sworld.due(AT, sender=memory)
    assert sent_to(memory) == []
    assert "event=locked" in sworld.log_lines()[0]
    assert [r.sent for r in sworld.due(AT, sender=memory).reports] == [2]


def test_pause_for_failing_recipients_is_held_for_a_person(sworld):
    emails = sworld.make_list(40)
    path = sworld.schedule(SEND_AT, issue_id="2026-03")
    failing = MemorySender(fail={e: [451, "4.7.1 slow down"] for e in emails})
    first = sworld.due(AT, sender=failing)
    assert first.problems[0].startswith("2026-03 -> members: dispatch of 2026-03 to 'members' "
                                        "paused: 40 consecutive failures; last: ")
    assert dispatches(sworld) == [("2026-03", "members", "paused")]
    idle = MemorySender()
    second = sworld.due(AT + dt.timedelta(minutes=5), sender=idle)
    assert len(second.problems) == 1 and sent_to(idle) == []
    assert second.problems[0].startswith("2026-03 -> members: paused: 40 consecutive failures; ")
    assert second.problems[0].endswith(
        f"; not resumed by cron: fix the cause, then resume with pbtp-mailer send {path} "
        "--list members")
    from pbtp_mailer.schedule.state import find_scheduled, format_schedule, schedule_entries

    items, _ = find_scheduled(sworld.root / "issues", sworld.config)
    entries = schedule_entries(items, sworld.store(), sworld.config, AT)
    assert format_schedule(entries, "America/Chicago").splitlines()[1].endswith(
        "members  sending (paused)")


def test_pause_because_the_sender_is_down_is_resumed_by_the_next_run(sworld):
    emails = sworld.make_list(5)
    sworld.schedule(SEND_AT, issue_id="2026-03")
    down = sworld.due(AT, sender=MemorySender(down=True))
    assert "paused: memory: connection refused (scripted)" in down.problems[0]
    up = MemorySender()
    report = sworld.due(AT + dt.timedelta(minutes=5), sender=up)
    assert report.problems == [] and sorted(sent_to(up)) == emails


def test_a_resume_with_nothing_to_do_logs_nothing(tmp_path):
    flaky = MemorySender(fail={"member00000@example.com": [451, "later"]})
    # no in-run wait, long backoff: the deferred row waits for a later run
    settings = "in_run_retry_seconds = 0.0\nbackoff_base_seconds = 600.0\n"
    w = ScheduleWorld(tmp_path, settings)
    try:
        w.make_list(5)
        w.schedule(SEND_AT, issue_id="2026-03")
        assert [r.deferred for r in w.due(AT, sender=flaky).reports] == [1]
        lines = len(w.log_lines())
        again = w.due(AT + dt.timedelta(minutes=1), sender=MemorySender())
        assert again.problems == [] and [r.sent for r in again.reports] == [0]
        assert len(w.log_lines()) == lines
    finally:
        w.close()


def test_stop_between_dispatches_is_one_line(sworld, memory):
    from pbtp_mailer.schedule.run import DueRunner

    sworld.make_list(3)
    sworld.schedule(SEND_AT, issue_id="2026-03")
    from pbtp_mailer.schedule.runlog import RunLog

    store = sworld.store()
    runner = DueRunner(sworld.config, store, sworld.root / "issues", clock=lambda: AT,
                       log=RunLog(None, lambda: AT), sender_factory=lambda _n: memory)
    runner.stop("interrupted by a signal")
    report = runner.run()
    assert report.problems == ["dispatch-due stopped: interrupted by a signal; the next run "
                               "continues"]
    assert report.exit_code == 1 and sent_to(memory) == []
