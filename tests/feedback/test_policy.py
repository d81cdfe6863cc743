"""Policy and storage: hard, 3-of-5 soft, complaint everywhere, unsubscribe, idempotency."""

from __future__ import annotations

import pytest

from pbtp_mailer.feedback import Policy, record_events
from tests.feedback.conftest import event


def _suppression(store, email):
    return store.subscriber(email).suppression


def test_hard_bounce_suppresses_as_bounced_and_maps_to_latest_copy(fworld):
    emails = fworld.make_list(3)
    store = fworld.store()
    fworld.send_issue(store, "2024-03")
    [rec] = record_events(store, [event(emails[0], "hard", status="5.1.1",
                                        diagnostic="550 5.1.1 user unknown")])
    assert rec.new and rec.suppressed_as == "bounced" and rec.delivery_id is not None
    assert _suppression(store, emails[0])[0] == "bounced"
    assert _suppression(store, emails[1]) is None
    [row] = store.feedback.events(email=emails[0])
    assert (row.kind, row.source, row.status, row.dispatch_id is not None) == (
        "hard", "dsn", "5.1.1", True)


def test_same_event_twice_is_recorded_once(fworld):
    emails = fworld.make_list(2)
    store = fworld.store()
    ev = event(emails[0], "soft", source="mailgun", event_id="mg-123")
    first = record_events(store, [ev, ev])
    again = record_events(store, [ev])
    assert [r.new for r in first + again] == [True, False, False]
    assert len(store.feedback.events(email=emails[0])) == 1


def test_soft_rule_three_of_last_five_copies(fworld):
    emails = fworld.make_list(2)
    store = fworld.store()
    who = emails[0]
    for n in range(5):
        fworld.send_issue(store, f"2025-0{n + 1}")
        if n in (0, 1, 2):
            [r] = record_events(store, [event(who, "soft", event_id=f"s{n}")])
            assert r.suppressed_as is None if n < 2 else r.suppressed_as == "bounced"
    assert _suppression(store, who)[0] == "bounced"


def test_soft_rule_counts_copies_not_reports(fworld):
    emails = fworld.make_list(2)
    store = fworld.store()
    who = emails[0]
    for n in range(5):
        fworld.send_issue(store, f"2025-0{n + 1}")
        if n in (1, 2):
            record_events(store, [event(who, "soft", event_id=f"s{n}")])
        if n == 2:  # a second soft report about the same copy counts once
            [r] = record_events(store, [event(who, "soft", event_id="s2-again")])
            assert r.new and r.suppressed_as is None
    assert _suppression(store, who) is None  # 2 copies of 5
    fworld.send_issue(store, "2025-06")
    [r] = record_events(store, [event(who, "soft", event_id="s5")])
    assert r.suppressed_as == "bounced"  # copies 2, 3 and 6 among the last five
    assert _suppression(store, who)[0] == "bounced"


def test_soft_bounces_outside_the_window_do_not_count(fworld):
    emails = fworld.make_list(1)
    store = fworld.store()
    who = emails[0]
    for n in range(2):
        fworld.send_issue(store, f"2025-0{n + 1}")
        record_events(store, [event(who, "soft", event_id=f"old{n}")])
    for n in range(2, 7):
        fworld.send_issue(store, f"2025-0{n + 1}")
    [r] = record_events(store, [event(who, "soft", event_id="new")])
    assert r.suppressed_as is None  # the two old ones fell out of the last 5 copies


def test_complaint_on_one_list_suppresses_on_all(fworld):
    emails = fworld.make_list(2)
    store = fworld.store()
    store.create_list("other")
    store.add_subscriber("other", emails[0])
    fworld.send_issue(store, "2024-03")
    [r] = record_events(store, [event(emails[0], "complaint", source="arf")])
    assert r.suppressed_as == "complained"
    assert [x.email for x in store.recipients("other")] == []
    assert emails[0] not in [x.email for x in store.recipients("members")]


def test_hard_after_complaint_does_not_downgrade(fworld):
    emails = fworld.make_list(1)
    store = fworld.store()
    record_events(store, [event(emails[0], "complaint", source="arf")])
    [r] = record_events(store, [event(emails[0], "hard")])
    assert r.new and r.suppressed_as is None
    assert _suppression(store, emails[0])[0] == "complained"


def test_provider_unsubscribe_is_list_level(fworld):
    emails = fworld.make_list(1)
    store = fworld.store()
    store.create_list("other")
    store.add_subscriber("other", emails[0])
    fworld.send_issue(store, "2024-03")
    [r] = record_events(store, [event(emails[0], "unsubscribe", source="sendgrid")])
    assert r.suppressed_as == "unsubscribed"
    assert [x.email for x in store.recipients("other")] == [emails[0]]
    assert [x.email for x in store.recipients("members")] == []


def test_send_time_5xx_becomes_an_smtp_event(fworld, memory_sender):
    emails = fworld.make_list(3)
    store = fworld.store()
    fworld.send_issue(store, "2024-03",
                      sender=memory_sender(fail={emails[1]: [550, "5.1.1 no such user"]}))
    [row] = store.feedback.events()
    assert (row.email, row.source, row.kind, row.status) == (emails[1], "smtp", "hard", "550")
    assert row.delivery_id is not None and row.suppressed_as == "bounced"


def test_policy_table():
    p = Policy(3, 5)
    assert [p.suppression_for(k, 0) for k in ("hard", "soft", "complaint", "unsubscribe")] == [
        "bounced", None, "complained", "unsubscribed"]
    assert p.suppression_for("soft", 3) == "bounced"


def test_event_rejects_unknown_kind():
    with pytest.raises(ValueError):
        event("a@example.com", "weird")


def test_one_batch_applies_suppressions_in_order(fworld):
    emails = fworld.make_list(2)
    store = fworld.store()
    a, b = emails
    got = record_events(store, [event(a, "hard", event_id="1"),
                                event(a, "complaint", source="arf", event_id="2"),
                                event(b, "complaint", source="arf", event_id="3"),
                                event(b, "hard", event_id="4")])
    assert [r.suppressed_as for r in got] == ["bounced", "complained", "complained", None]
    assert _suppression(store, a)[0] == "complained"
    assert _suppression(store, b)[0] == "complained"
    history = [h.status for h in store.subscriber(a).history]
    assert history[-2:] == ["bounced", "complained"]
