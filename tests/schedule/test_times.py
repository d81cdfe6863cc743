"""send_at in the configured zone (America/Chicago): offsets, DST gaps and overlaps."""

from __future__ import annotations

import datetime as dt

import pytest

from pbtp_mailer.errors import IssueError
from pbtp_mailer.issue.model import load_issue
from pbtp_mailer.schedule.state import (
    find_scheduled,
    parse_now,
    resolve_send_at,
    schedule_problems,
    show_time,
)
from tests.conftest import MARCH
from tests.schedule.conftest import utc

ZONE = "America/Chicago"


@pytest.mark.parametrize("send_at, expected", [
    ("2026-01-15T09:00:00-06:00", "2026-01-15T15:00:00+00:00"),
    ("2026-01-15T15:00:00Z", "2026-01-15T15:00:00+00:00"),
    ("2026-01-15T09:00:00", "2026-01-15T15:00:00+00:00"),  # CST, -06:00
    ("2026-07-15T09:00:00", "2026-07-15T14:00:00+00:00"),  # CDT, -05:00
    ('"2026-07-15 09:00"', "2026-07-15T14:00:00+00:00"),
    ("2026-03-08T01:59:59", "2026-03-08T07:59:59+00:00"),  # last second of CST
    ("2026-03-08T03:00:00", "2026-03-08T08:00:00+00:00"),  # first of CDT
    ("2026-11-01T00:59:59", "2026-11-01T05:59:59+00:00"),
    ("2026-11-01T02:00:00", "2026-11-01T08:00:00+00:00"),  # after the repeated hour
    ("2026-11-01T01:30:00-05:00", "2026-11-01T06:30:00+00:00"),  # repeated hour, CDT
    ("2026-11-01T01:30:00-06:00", "2026-11-01T07:30:00+00:00"),  # repeated hour, CST
])
def test_send_at_resolved_in_the_configured_zone(sworld, send_at, expected):
    issue = load_issue(sworld.schedule(send_at))
    assert resolve_send_at(issue, ZONE).isoformat() == expected


def test_time_skipped_by_spring_forward_is_an_error(sworld):
    path = sworld.schedule("2026-03-08T02:30:00")
    with pytest.raises(IssueError) as err:
        resolve_send_at(load_issue(path), ZONE)
    assert str(err.value) == (
        f"{sworld.send_at_place(path)}: schedule.send_at: 2026-03-08T02:30:00 does not exist "
        "in America/Chicago (the clocks jump ahead from CST to CDT that night); choose another "
        "time or write the offset")
    assert err.value.exit_code == 2


def test_time_repeated_by_fall_back_asks_for_the_offset(sworld):
    path = sworld.schedule("2026-11-01T01:30:00")
    with pytest.raises(IssueError) as err:
        resolve_send_at(load_issue(path), ZONE)
    assert str(err.value) == (
        f"{sworld.send_at_place(path)}: schedule.send_at: 2026-11-01T01:30:00 happens twice "
        "in America/Chicago (clocks go back that night); write the offset: "
        "2026-11-01T01:30:00-05:00 (CDT) or 2026-11-01T01:30:00-06:00 (CST)")


def test_other_zones_gaps(sworld):
    issue = load_issue(sworld.schedule("2026-03-29T02:30:00"))
    with pytest.raises(IssueError, match="does not exist in Europe/Berlin"):
        resolve_send_at(issue, "Europe/Berlin")
    assert resolve_send_at(issue, "UTC").isoformat() == "2026-03-29T02:30:00+00:00"


def test_find_scheduled_reports_bad_files_and_keeps_the_rest(sworld):
    sworld.schedule("2026-11-01T01:30:00", issue_id="2026-11", name="2026-11")
    sworld.schedule("2026-12-01T09:00:00", issue_id="2026-12", name="2026-12")
    (sworld.root / "issues" / "draft.yaml").write_text("id: draft\n", encoding="utf-8")
    items, problems = find_scheduled(sworld.root / "issues", sworld.config)
    assert [i.issue.id for i in items] == ["2026-12"]  # the sample 2024-03 has no schedule
    assert len(problems) == 2  # one line per bad file: a DST error, the draft's first problem
    assert "2026-11.yaml" in problems[0] and "happens twice" in problems[0]
    draft = sworld.root / "issues" / "draft.yaml"
    assert problems[1].startswith(f"{draft}:1:1: ")
    assert problems[1].endswith(f" (and 5 more: pbtp-mailer check {draft})")


def test_two_files_scheduling_one_issue_id_are_held_back(sworld):
    sworld.schedule("2026-12-01T09:00:00", issue_id="2026-12", name="a")
    sworld.schedule("2026-12-02T09:00:00", issue_id="2026-12", name="b")
    items, problems = find_scheduled(sworld.root / "issues", sworld.config)
    assert items == []
    assert problems == [
        f"issue id '2026-12' is scheduled by 2 files ({sworld.root}/issues/a.yaml, "
        f"{sworld.root}/issues/b.yaml); none of them is sent until one is left"]


def test_schedule_problems_for_check(sworld):
    config = sworld.config
    path = sworld.schedule("2026-03-05T09:00:00")
    issue = load_issue(path)
    place = sworld.send_at_place(path)
    assert schedule_problems(issue, config, utc("2026-03-05T14:59:59Z")) == []
    [p] = schedule_problems(issue, config, utc("2026-03-05T16:00:00Z"))
    assert p.severity == "warning"
    assert str(p) == (f"{place}: schedule.send_at: 2026-03-05 09:00 CST (15:00Z) is already "
                      "past (1.0 h ago); the next dispatch-due run sends it")
    [p] = schedule_problems(issue, config, utc("2026-03-07T15:00:00Z"))
    assert str(p) == (f"{place}: schedule.send_at: 2026-03-05 09:00 CST (15:00Z) is already "
                      "past (48.0 h ago); dispatch-due will not send it (older than "
                      "stale_after_hours = 24) unless its dispatch has started")
    bad = load_issue(sworld.schedule("2026-03-08T02:30:00"))
    [p] = schedule_problems(bad, config, utc("2026-01-01T00:00:00Z"))
    assert p.severity == "error" and "does not exist" in str(p)
    assert schedule_problems(load_issue(MARCH), config, utc("2026-01-01T00:00:00Z")) == []


def test_parse_now():
    assert parse_now("2026-03-08T08:00:00Z") == dt.datetime(2026, 3, 8, 8, tzinfo=dt.UTC)
    assert parse_now("2026-03-08T02:00:00-06:00") == dt.datetime(2026, 3, 8, 8, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="has no offset"):
        parse_now("2026-03-08T08:00:00")
    with pytest.raises(ValueError, match="not an ISO 8601"):
        parse_now("tomorrow")


def test_show_time():
    from zoneinfo import ZoneInfo

    assert show_time(utc("2026-03-08T14:00:00Z"), ZoneInfo(ZONE)) == "2026-03-08 09:00 CDT (14:00Z)"
