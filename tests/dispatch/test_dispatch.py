"""Dispatch through the ledger, in-process, with the memory sender (policy, not wire)."""

from __future__ import annotations

import email
import email.policy
from collections import Counter

import pytest

from pbtp_mailer.errors import ContentChangedError
from pbtp_mailer.store.ledger import PauseReason


def recipients_of(sender) -> Counter:
    return Counter(r for m in sender.outbox for r in m.rcpt_to)


def test_each_recipient_once_and_rerun_sends_nothing(world, memory_sender):
    emails = world.make_list(60)
    store = world.store()
    s1 = memory_sender(batch_size=8)
    report = world.run(store, sender=s1)
    assert report.sent == 60 and report.exit_code == 0
    assert recipients_of(s1) == Counter({e: 1 for e in emails})
    s2 = memory_sender()
    again = world.run(store, sender=s2)
    assert again.sent == 0 and s2.outbox == [] and again.exit_code == 0


def test_each_copy_is_personalised(world, memory_sender):
    from pbtp_mailer.tokens import read_token

    world.make_list(5)
    store = world.store()
    sender = memory_sender()
    world.run(store, sender=sender)
    ids = set()
    for out in sender.outbox:
        msg = email.message_from_bytes(out.data, policy=email.policy.default)
        (rcpt,) = out.rcpt_to
        assert msg["To"].addresses[0].addr_spec == rcpt
        token = msg["List-Unsubscribe"].split("/u/")[1].split(">")[0]
        sub_id, list_id = read_token(world.env["PBTP_MAILER_SECRET"].encode(), token)
        assert store.member(sub_id, list_id)[0] == rcpt
        text = msg.get_body(("plain",)).get_content()
        assert f"/u/{token}>" in text and rcpt in text
        ids.add(msg["Message-ID"])
    assert len(ids) == 5


def test_new_subscribers_get_it_next_run_and_suppressed_are_skipped(world, memory_sender):
    world.make_list(10)
    store = world.store()
    world.run(store, sender=memory_sender(), limit=4)
    store.add_subscriber("members", "late@example.com", name="Late Comer")
    store.unsubscribe("member00009@example.com", "members")
    sender = memory_sender()
    report = world.run(store, sender=sender)
    got = recipients_of(sender)
    assert "late@example.com" in got
    assert "member00009@example.com" not in got
    assert report.counts["sent"] == 10  # 9 of the first ten + the late one
    assert report.enqueued == 1


def test_suppressed_between_claims_is_checked_at_send_time(world, memory_sender):
    """The address is suppressed after the run started (rows already enqueued)."""
    world.make_list(20)
    store = world.store()
    sender = memory_sender(batch_size=5)
    calls = {"n": 0}
    original = sender.send

    def send(batch):
        calls["n"] += 1
        if calls["n"] == 1:
            store.suppress("member00019@example.com", "complained")
        return original(batch)

    sender.send = send
    report = world.run(store, sender=sender)
    assert "member00019@example.com" not in recipients_of(sender)
    assert report.skipped == 1 and report.counts["skipped"] == 1


def test_limit_sends_at_most_n_then_resumes(world, memory_sender):
    world.make_list(30)
    store = world.store()
    s1 = memory_sender(batch_size=8)
    r1 = world.run(store, sender=s1, limit=10)
    assert r1.sent == 10 and r1.exit_code == 5 and r1.counts["pending"] == 20
    s2 = memory_sender(batch_size=8)
    world.run(store, sender=s2)
    assert set(recipients_of(s1)).isdisjoint(recipients_of(s2))
    assert len(recipients_of(s2)) == 20


def test_transient_failure_deferred_then_retried(world, memory_sender):
    world.make_list(6)
    store = world.store()
    flaky = memory_sender(fail={"member00002@example.com": [451, "4.3.0 try later"]})
    report = world.run(store, sender=flaky, in_run_retry_seconds=0)
    assert report.counts["deferred"] == 1 and report.exit_code == 5
    rows = {r.email: r for r in world.plan(store)[0].store.engine.connect().execute(
        __import__("sqlalchemy").text("select email, state, attempts, last_code from deliveries"))}
    assert rows["member00002@example.com"].state == "deferred"
    assert rows["member00002@example.com"].last_code == 451
    healthy = memory_sender()
    report2 = world.run(store, sender=healthy)
    assert recipients_of(healthy) == Counter({"member00002@example.com": 1})
    assert report2.exit_code == 0


def test_transient_gives_up_after_max_attempts(world, memory_sender):
    world.make_list(3)
    store = world.store()
    always = memory_sender(fail={"member00001@example.com": [451, "4.3.0 try later"]})
    report = world.run(store, sender=always)  # in-run retries every ~10-50 ms
    assert report.counts["failed"] == 1 and report.exit_code == 3
    from pbtp_mailer.dispatch.status import recipients_in_state

    (row,) = recipients_in_state(store, "2024-03", "failed")
    assert row["attempts"] == 6 and row["last_text"].startswith("gave up after 6 attempts")
    assert not store.is_suppressed("member00001@example.com", store.get_list("members").id)


def test_permanent_failure_recorded_and_suppressed(world, memory_sender):
    world.make_list(5)
    store = world.store()
    sender = memory_sender(fail={"member00003@example.com": [550, "5.1.1 no such user"]})
    report = world.run(store, sender=sender)
    assert report.failed == 1 and report.exit_code == 3
    assert store.is_suppressed("member00003@example.com", store.get_list("members").id)
    details = store.subscriber("member00003@example.com")
    assert "bounced" in str(details)


def test_server_down_at_start_pauses_with_one_error(world, memory_sender):
    world.make_list(20)
    store = world.store()
    report = world.run(store, sender=memory_sender(down=True))
    assert report.pause_message.startswith("dispatch of 2024-03 to 'members' paused: "
                                           "memory: connection refused")
    assert report.pause_reason is PauseReason.SENDER_UNAVAILABLE and report.exit_code == 4
    from pbtp_mailer.dispatch.status import issue_status

    assert issue_status(store, "2024-03")[0].counts["pending"] == 20


def test_server_going_down_pauses_after_consecutive_failures(world, memory_sender):
    from pbtp_mailer.errors import SendTransientError

    world.make_list(200)
    store = world.store()
    down = memory_sender(batch_size=10)
    slept = []

    def refuse(batch):
        raise SendTransientError("smtp.example.org:587: connection refused")

    down.send = refuse
    from pbtp_mailer.dispatch.dispatcher import Dispatcher

    plan, opts = world.plan(store)
    paused = Dispatcher(plan, opts, sender=down, sleep=slept.append).run()
    assert paused.paused == ("30 consecutive failures; last: "
                             "smtp.example.org:587: connection refused")
    assert paused.pause_reason is PauseReason.CONSECUTIVE_FAILURES and paused.exit_code == 4
    assert len(slept) == 3  # backs off between refused batches, then gives up
    from pbtp_mailer.dispatch.status import issue_status

    (st,) = issue_status(store, "2024-03")
    assert st.state == "paused" and st.counts["pending"] == 200 and st.counts["sent"] == 0
    ok = memory_sender(batch_size=50)
    report = world.run(store, sender=ok)
    assert report.sent == 200 and report.exit_code == 0


def test_wrong_credentials_pause_at_once(world, memory_sender):
    world.make_list(50)
    store = world.store()
    bad = memory_sender(auth_fails=True)
    report = world.run(store, sender=bad)
    assert "auth" in report.paused.lower() and report.exit_code == 4
    from pbtp_mailer.dispatch.status import issue_status

    assert issue_status(store, "2024-03")[0].counts["pending"] == 50


def test_edited_issue_is_refused_then_accepted_with_flag(world, memory_sender):
    world.make_list(10)
    store = world.store()
    world.run(store, sender=memory_sender(), limit=3)
    world.issue.write_text(world.issue.read_text(encoding="utf-8").replace(
        "Surgical extirpation", "Surgical removal"), encoding="utf-8")
    with pytest.raises(ContentChangedError, match="changed since its dispatch to list 'members' "
                                                  r"started \(3 already sent"):
        world.run(store, sender=memory_sender())
    sender = memory_sender()
    world.run(store, sender=sender, accept_changes=True)
    assert len(sender.outbox) == 7
    body = email.message_from_bytes(sender.outbox[0].data, policy=email.policy.default)
    assert "Surgical removal" in body.get_body(("plain",)).get_content()


def test_address_on_two_lists_gets_issue_once(world, memory_sender):
    world.make_list(5)
    store = world.store()
    store.create_list("reviewers")
    store.add_subscriber("reviewers", "member00001@example.com")
    store.add_subscriber("reviewers", "editor@example.com")
    world.run(store, sender=memory_sender())
    second = memory_sender()
    world.run(store, sender=second, list_name="reviewers")
    assert recipients_of(second) == Counter({"editor@example.com": 1})


def test_header_injection_in_subscriber_name_fails_that_row_only(world, memory_sender):
    world.make_list(3)
    store = world.store()
    from sqlalchemy import text

    with store.engine.begin() as conn:
        conn.execute(text("update subscribers set name = :n where email = :e"),
                      {"n": "Evil\r\nBcc: victim@example.org", "e": "member00001@example.com"})
    sender = memory_sender()
    report = world.run(store, sender=sender)
    assert report.header_refused == 1 and report.sent == 2
    assert all(b"victim" not in m.data for m in sender.outbox)


def test_dry_run_touches_nothing(world):
    from pbtp_mailer.dispatch.dispatcher import dry_run
    from pbtp_mailer.dispatch.status import issue_status

    world.make_list(25)
    store = world.store()
    store.unsubscribe("member00004@example.com", "members")
    plan, _ = world.plan(store)
    preview = dry_run(plan)
    assert preview.recipients == 24 and preview.suppressed == 1
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in preview.first_headers
    assert issue_status(store, "2024-03") == []


def test_rerun_keeps_the_finish_time(world, memory_sender):
    from pbtp_mailer.dispatch.status import issue_status

    world.make_list(3)
    store = world.store()
    world.run(store, sender=memory_sender())
    (first,) = issue_status(store, "2024-03")
    import datetime as dt

    from pbtp_mailer.dispatch.dispatcher import Dispatcher

    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    plan, opts = world.plan(store)
    Dispatcher(plan, opts, sender=memory_sender(), clock=lambda: later).run()
    (second,) = issue_status(store, "2024-03")
    assert first.finished_at is not None and second.finished_at == first.finished_at


def _dead_sending(store, n: int) -> list[str]:
    """Leave n pending rows 'sending' as a crashed run (dead pid) would."""
    from sqlalchemy import text

    with store.engine.begin() as conn:
        rows = conn.execute(text("select id, email from deliveries where state = 'pending' "
                                 "order by id limit :n"), {"n": n}).all()
        for r in rows:
            conn.execute(text("update deliveries set state = 'sending', attempts = 1, "
                              "claimed_by = 'ghost-host:999999:dead', message_id = :m "
                              "where id = :i"), {"m": f"<crash.{r.id}@example.org>", "i": r.id})
    return [r.email for r in rows]


def test_ambiguous_rows_reported_and_resent_only_on_request(world, memory_sender):
    from pbtp_mailer.dispatch.status import issue_status

    world.make_list(10)
    store = world.store()
    world.run(store, sender=memory_sender(), limit=1)  # creates the dispatch and its rows
    ghosts = _dead_sending(store, 3)
    sender = memory_sender()
    report = world.run(store, sender=sender)
    assert report.ambiguous == 3 and report.exit_code == 5
    assert not set(ghosts) & set(recipients_of(sender))
    (st,) = issue_status(store, "2024-03")
    assert sorted(a["email"] for a in st.ambiguous) == sorted(ghosts)
    again = memory_sender()
    report = world.run(store, sender=again, resend_unknown=True)
    assert report.requeued_unknown == 3 and report.exit_code == 0
    assert recipients_of(again) == Counter({e: 1 for e in ghosts})
    ids = {email.message_from_bytes(m.data, policy=email.policy.default)["Message-ID"]
           for m in again.outbox}
    assert all(i.startswith("<crash.") for i in ids), "a resend keeps the original Message-ID"


def test_transient_gives_up_after_max_age(world, memory_sender):
    import datetime as dt

    from pbtp_mailer.dispatch.dispatcher import Dispatcher

    world.make_list(2)
    store = world.store()
    start = dt.datetime(2026, 3, 5, 9, 0, tzinfo=dt.UTC)
    flaky = memory_sender(fail={"member00001@example.com": [451, "4.3.0 try later"]})
    plan, opts = world.plan(store, in_run_retry_seconds=0)
    Dispatcher(plan, opts, sender=flaky, clock=lambda: start).run()
    later = start + dt.timedelta(hours=73)  # max_age_hours = 72 by default
    plan, opts = world.plan(store, in_run_retry_seconds=0)
    report = Dispatcher(plan, opts, sender=flaky, clock=lambda: later).run()
    assert report.counts["failed"] == 1 and report.counts["deferred"] == 0


def test_permanent_failure_suppression_policy_can_be_off(tmp_path, memory_sender):
    from tests.dispatch.conftest import World

    w = World(tmp_path, "suppress_on_permanent = false\n")
    try:
        w.make_list(3)
        store = w.store()
        sender = memory_sender(fail={"member00001@example.com": [550, "5.1.1 no such user"]})
        report = w.run(store, sender=sender)
        assert report.failed == 1
        assert not store.is_suppressed("member00001@example.com", store.get_list("members").id)
    finally:
        w.close()


def test_daily_quota_persists_across_runs(world, memory_sender):
    import datetime as dt

    from pbtp_mailer.dispatch.dispatcher import Dispatcher

    cfg = world.root / "pbtp-mailer.toml"
    cfg.write_text(cfg.read_text(encoding="utf-8")
                   + '\n[senders.limited]\nkind = "memory"\nrate_per_day = 5\n', encoding="utf-8")
    world.make_list(12)
    store = world.store()
    day1 = dt.datetime(2026, 3, 5, 9, 0, tzinfo=dt.UTC)
    sent = []
    for clock in (day1, day1 + dt.timedelta(hours=2), day1 + dt.timedelta(days=1)):
        plan, opts = world.plan(store, sender="limited")
        report = Dispatcher(plan, opts, sender=memory_sender(), clock=lambda c=clock: c).run()
        sent.append(report.sent)
        if report.sent < 12:
            assert report.quota == "sender 'limited' reached its per-day limit (5)"
            assert report.exit_code == 5
    assert sent == [5, 0, 5]


@pytest.mark.parametrize("a, b, aligned", [
    ("example.org", "example.org", True), ("mail.example.org", "example.org", True),
    ("news.example.org", "mail.example.org", True), ("example.net", "example.org", False),
    ("evil-example.org", "example.org", False),
])
def test_dkim_domain_alignment(a, b, aligned):
    from pbtp_mailer.dispatch.plan import domains_align

    assert domains_align(a, b) is aligned


def test_misaligned_dkim_domain_is_warned_before_sending(world):
    cfg = world.root / "pbtp-mailer.toml"
    cfg.write_text(cfg.read_text(encoding="utf-8") + '\n[senders.signed]\nkind = "memory"\n'
                   'dkim_selector = "s1"\ndkim_domain = "other.example.net"\n'
                   'dkim_key_file = "key.pem"\n', encoding="utf-8")
    world.make_list(1)
    plan, _ = world.plan(world.store(), sender="signed")
    assert plan.warnings == ["sender 'signed': DKIM d=other.example.net does not align with the "
                             "From domain example.org; Gmail and Yahoo want DMARC alignment"]


@pytest.mark.parametrize("key, old, new", [
    ("from", "Alliance PBTP News <newsletter@example.org>", "Other Office <office@example.org>"),
    ("reply_to", "pbtp-office@example.org", "someone-else@example.org"),
    ("list_id", "Alliance PBTP News <pbtp-news.example.org>", "Other <other.example.org>"),
])
def test_finding9_from_reply_to_list_id_change_mid_dispatch_is_refused(world, memory_sender,
                                                                        key, old, new):
    """Issue 11, finding 9: who the issue comes from is frozen like its content."""
    world.make_list(10)
    store = world.store()
    world.run(store, sender=memory_sender(), limit=3)
    toml = world.root / "pbtp-mailer.toml"
    text = toml.read_text(encoding="utf-8")
    assert f'{key} = "{old}"' in text
    toml.write_text(text.replace(f'{key} = "{old}"', f'{key} = "{new}"'), encoding="utf-8")
    with pytest.raises(ContentChangedError, match="From, Reply-To or List-Id changed"):
        world.run(store, sender=memory_sender())
    sender = memory_sender()
    world.run(store, sender=sender, accept_changes=True)
    assert len(sender.outbox) == 7
    world.run(store, sender=memory_sender())  # the new values are now the frozen ones


def test_finding9_dispatch_from_before_the_headers_hash_adopts_them(world, memory_sender):
    """A dispatch started before migration 0007 (headers_hash NULL) resumes without refusal."""
    from sqlalchemy import update

    from pbtp_mailer.store.ledger_schema import dispatches

    world.make_list(10)
    store = world.store()
    world.run(store, sender=memory_sender(), limit=3)
    with store.engine.begin() as conn:
        conn.execute(update(dispatches).values(headers_hash=None))
    sender = memory_sender()
    world.run(store, sender=sender)
    assert len(sender.outbox) == 7
