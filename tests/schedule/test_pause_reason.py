"""A pause is a typed reason in a column (migration 0004_pause_reason), not a sentence:
cron holds what needs a person by that column, and logs what a paused run sent."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import text

from pbtp_mailer.schedule.state import held
from pbtp_mailer.senders.memory import MemorySender
from pbtp_mailer.store.ledger import PauseReason
from tests.schedule.conftest import utc

SEND_AT = "2026-03-05T09:00:00"  # CST: 15:00Z
AT = utc("2026-03-05T15:00:00Z")


def test_paused_run_logs_its_sent_count_and_cron_holds_a_rejected_message(sworld):
    emails = sworld.make_list(30)
    path = sworld.schedule(SEND_AT, issue_id="2026-03")
    rejecting = MemorySender(batch_size=5, reject={emails[12]: [552, "5.3.4 message too big"]})
    first = sworld.due(AT, sender=rejecting)
    (report,) = first.reports
    assert report.sent == 14 and report.pause_reason is PauseReason.MESSAGE_REJECTED
    sent = [line for line in sworld.log_lines() if " event=sent " in line]
    assert len(sent) == 1
    assert " sent=14 failed=0 deferred=0 skipped=0 remaining=16 " in sent[0]
    assert " state=paused " in sent[0] and sent[0].endswith(" paused=message_rejected")
    assert first.problems == [
        "2026-03 -> members: dispatch of 2026-03 to 'members' paused: " + report.paused
        + " (fix the cause, then run the same command again to resume)"]
    idle = MemorySender()
    second = sworld.due(AT + dt.timedelta(minutes=5), sender=idle)
    assert idle.outbox == [] and len(second.problems) == 1
    assert second.problems[0].endswith(
        f"; not resumed by cron: fix the cause, then resume with pbtp-mailer send {path} "
        "--list members")


def test_held_reads_the_reason_not_the_note(sworld):
    sworld.make_list(3)
    store = sworld.store()
    world_plan = sworld.plan(store)
    from pbtp_mailer.dispatch.dispatcher import Dispatcher

    Dispatcher(*world_plan, sender=MemorySender(down=True)).run()
    (d,) = store.ledger().find("2024-03")
    assert d.state == "paused" and d.pause_reason is PauseReason.SENDER_UNAVAILABLE
    assert not held(d)  # an unreachable server: the next cron run tries again
    for reason in PauseReason:
        renamed = dataclasses.replace(d, pause_reason=reason, note="any words at all")
        assert held(renamed) == (reason in (PauseReason.CONSECUTIVE_FAILURES,
                                            PauseReason.MESSAGE_REJECTED))
    sentence = dataclasses.replace(d, note="40 consecutive failures; last: x")
    assert not held(sentence)


def test_migration_0004_gives_old_pauses_their_reason(tmp_path):
    from pbtp_mailer.store import Store
    from pbtp_mailer.store.db import open_engine
    from pbtp_mailer.store.migrations import MIGRATIONS, migrate

    engine = open_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    try:
        migrate(engine, MIGRATIONS[:3])  # a database of the version before 0004
        now = "2026-03-01 12:00:00.000000"
        with engine.begin() as conn:
            conn.execute(text('ALTER TABLE dispatches DROP COLUMN pause_reason'))
            for i, (state, note) in enumerate([
                    ("paused", "40 consecutive failures; last: a@example.org: 451 busy"),
                    ("paused", "smtp.example.org:587: connection refused"),
                    ("done", "")]):
                conn.execute(text(
                    "INSERT INTO dispatches (issue_id, list_name, issue_file, sender, "
                    "content_hash, subject, preheader, language, frozen_text, frozen_html, "
                    "state, note, created_at, updated_at) VALUES (:i, 'members', 'f', 's', "
                    "'h', 's', 'p', 'en', 't', 'h', :state, :note, :now, :now)"),
                    {"i": f"2026-0{i + 1}", "state": state, "note": note, "now": now})
        store = Store(engine)  # migrates
        reasons = {d.issue_id: d.pause_reason for i in ("2026-01", "2026-02", "2026-03")
                   for d in store.ledger().find(i)}
    finally:
        engine.dispose()
    assert reasons == {"2026-01": PauseReason.CONSECUTIVE_FAILURES,
                       "2026-02": PauseReason.SENDER_UNAVAILABLE, "2026-03": None}
