"""GDPR export and erase through the CLI, after a real dispatch (outbox sender)."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from pbtp_mailer.cli import main

ISSUE = "issues/2024-03.yaml"


@pytest.fixture()
def cli(project, monkeypatch):
    if os.environ.get("PBTP_TEST_POSTGRES_URL"):
        from tests.store.conftest import database_url

        monkeypatch.setenv("PBTP_MAILER_DATABASE_URL", database_url(project))
    runner = CliRunner()

    def run(*args, input=None):
        return runner.invoke(main, list(args), catch_exceptions=False, input=input)

    return run


def test_export_then_erase(cli, project) -> None:
    (project / "old.csv").write_text(
        "email,name,institution\nann@example.org,Ann,Example Hospital\n"
        "bob@example.org,Bob,Example Hospital\n", encoding="utf-8")
    assert cli("lists", "create", "members", "--public").output == "Created public list 'members'.\n"
    r = cli("lists", "import", "members", "old.csv")
    assert r.exit_code == 0, r.output
    r = cli("send", ISSUE, "--list", "members", "--yes")
    assert r.exit_code == 0, r.output
    # a bounce (DSN through `bounces ingest`, the address in its diagnostic) and a
    # complaint (an SES-style event id built from the address), for both people
    for who in ("ann", "bob"):
        r = cli("bounces", "ingest", "-", input=_dsn(f"{who}@example.org"))
        assert r.exit_code == 0 and "1 event(s) recorded" in r.output, r.output
    _complain(project, "ann@example.org", "bob@example.org")
    before = json.loads(cli("status", ISSUE, "--json").output)
    assert before[0]["counts"]["sent"] == 2
    assert (before[0]["feedback"]["hard_bounces"], before[0]["feedback"]["complaints"]) == (2, 2)
    report_before = _report_summary(project)

    data = json.loads(cli("subscribers", "export", "ANN@example.org").output)
    assert data["email"] == "ann@example.org" and data["name"] == "Ann"
    assert data["attributes"] == {"institution": "Example Hospital"}
    assert [m["list"] for m in data["lists"]] == ["members"]
    assert [(c["how"], c["detail"]) for c in data["consent"]] == [("import", "old.csv")]
    assert [(d["issue_id"], d["state"]) for d in data["deliveries"]] == [("2024-03", "sent")]
    assert [(f["source"], f["kind"], f["issue_id"]) for f in data["feedback"]] == [
        ("dsn", "hard", "2024-03"), ("ses", "complaint", "2024-03")]
    assert "ann@example.org" in data["feedback"][0]["diagnostic"]
    shown = json.loads(cli("subscribers", "show", "ann@example.org", "--json").output)
    assert shown["consent"] == data["consent"] and "deliveries" not in shown

    r = cli("subscribers", "erase", "ann@example.org", input="n\n")
    assert r.exit_code == 1  # declined: nothing happened
    assert cli("subscribers", "export", "ann@example.org").output.count('"held"') == 0
    r = cli("subscribers", "erase", "ann@example.org", "--yes")
    assert (r.exit_code, r.output) == (0, "Erased ann@example.org.\n")

    r = cli("subscribers", "show", "ann@example.org")
    assert (r.exit_code, r.output) == (1, "Error: no subscriber ann@example.org\n")
    assert json.loads(cli("subscribers", "export", "ann@example.org").output) == {
        "email": "ann@example.org", "held": False}
    after = json.loads(cli("status", ISSUE, "--json").output)
    assert after[0]["counts"] == before[0]["counts"]
    assert after[0]["feedback"] == before[0]["feedback"]  # rates unchanged
    assert _report_summary(project) == report_before
    r = cli("report", ISSUE, "-o", "report.html")
    assert r.exit_code == 0, r.output
    page = (project / "report.html").read_text(encoding="utf-8")
    assert "(erased)" in page and "ann@example.org" not in page and "erased:" not in page
    listed = cli("bounces", "list").output
    assert "ann@example.org" not in listed and "bob@example.org" in listed
    assert listed.count("erased:") == 2
    store = _open_store(project)
    try:
        kept = [e for e in store.feedback.events() if e.email.startswith("erased:")]
    finally:
        store.close()
    assert [e.kind for e in kept] == ["hard", "complaint"]
    assert "<[erased]>: no such user" in kept[0].diagnostic
    assert all(e.event_id.startswith("erased:") and "ann" not in e.event_id for e in kept)
    rows = cli("status", ISSUE, "--recipients", "sent").output
    assert "ann@example.org" not in rows and "bob@example.org" in rows
    assert "erased:" in rows

    r = cli("lists", "import", "members", "old.csv")
    assert r.exit_code == 0, r.output
    assert r.output == ("old.csv:2: skipped ann@example.org: erased on request\n"
                        "old.csv:3: skipped bob@example.org: complained\n"
                        "old.csv: 2 rows: 0 added, 0 updated, 0 unchanged, 2 skipped, "
                        "0 rejected.\n")
    assert json.loads(cli("subscribers", "export", "ann@example.org").output)["held"] is False
    r = cli("subscribers", "add", "members", "ann@example.org")
    assert r.exit_code != 0 and "erased on request" in r.output
    assert "Hint: pass --resubscribe only if they asked" in r.output

    # the bytes of the database no longer hold the address (SQLite only)
    db = project / ".pbtp-mailer" / "pbtp-mailer.sqlite3"
    if not os.environ.get("PBTP_TEST_POSTGRES_URL"):
        from sqlalchemy import create_engine, text

        engine = create_engine(f"sqlite:///{db}")
        with engine.begin() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
            conn.execute(text("VACUUM"))
        engine.dispose()
        assert b"ann@example.org" not in db.read_bytes()
        assert b"bob@example.org" in db.read_bytes()  # the check can fail


def _dsn(recipient: str) -> bytes:
    from tests.feedback.conftest import dsn_bytes

    return dsn_bytes(recipient, message_id=f"<dsn-{recipient}>").replace(
        b"no such user", f"<{recipient}>: no such user".encode())


def _open_store(project):
    from pbtp_mailer.config import load_config
    from pbtp_mailer.store import Store

    return Store.open(load_config(project / "pbtp-mailer.toml"))


def _complain(project, *emails: str) -> None:
    import datetime as dt

    from pbtp_mailer.feedback import FeedbackEvent
    from pbtp_mailer.feedback.policy import record_events

    store = _open_store(project)
    try:
        record_events(store, [FeedbackEvent(
            email=e, kind="complaint", source="ses", event_id=f"fb-1:{e}",
            received_at=dt.datetime.now(dt.UTC)) for e in emails])
    finally:
        store.close()


def _report_summary(project) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """What ``report`` counts: delivery states, distinct addresses per event kind, domains."""
    from collections import Counter

    store = _open_store(project)
    try:
        rows = store.feedback.issue_rows("2024-03")
    finally:
        store.close()
    kinds: dict[str, set[str]] = {}
    for key, kind, *_ in rows.events:
        kinds.setdefault(kind, set()).add(key)
    event_keys = {key for key, *_ in rows.events}
    return (dict(Counter(s for _, s, *_ in rows.deliveries)),
            {k: len(v) for k, v in kinds.items()},
            {"deliveries with events": sum(1 for key, *_ in rows.deliveries if key in event_keys)})


def test_lists_set_and_form(cli, project) -> None:
    cli("lists", "create", "news", "--description", "Monthly news")
    r = cli("lists", "form", "news")
    assert r.exit_code == 2
    assert "Error: list 'news' is not public" in r.output
    assert "Hint: pbtp-mailer lists set news --public" in r.output
    assert cli("lists", "set", "news", "--public").output == "List 'news' is now public.\n"
    r = cli("lists", "form", "news")
    assert r.exit_code == 0
    assert r.output == (
        '<form method="get" action="https://news.example.org/pbtp/subscribe/news" '
        'class="pbtp-subscribe">\n'
        '  <label for="pbtp-email">E-mail address</label>\n'
        '  <input type="email" id="pbtp-email" name="email" required autocomplete="email">\n'
        '  <button type="submit">Subscribe to news</button>\n'
        "</form>\n")
    assert cli("lists", "set", "news", "--private").output == "List 'news' is now private.\n"
    r = cli("lists", "set", "nope", "--public")
    assert r.exit_code == 2 and "unknown list 'nope'" in r.output


def test_resubscribe_after_erase_lifts_the_block(cli, project) -> None:
    cli("lists", "create", "news")
    cli("subscribers", "erase", "zed@example.org", "--yes")
    r = cli("subscribers", "add", "news", "zed@example.org", "--resubscribe")
    assert (r.exit_code, r.output) == (0, "Subscribed zed@example.org to 'news'.\n")
    cli("subscribers", "remove", "news", "zed@example.org")
    (project / "z.csv").write_text("email\nzed@example.org\n", encoding="utf-8")
    assert "1 added" in cli("lists", "import", "news", "z.csv").output


def test_erase_unknown_address_still_blocks_imports(cli, project) -> None:
    r = cli("subscribers", "erase", "zed@example.org", "--yes")
    assert r.output == "Nothing was held about zed@example.org; it is now blocked from imports.\n"
    cli("lists", "create", "news")
    (project / "z.csv").write_text("email\nzed@example.org\n", encoding="utf-8")
    r = cli("lists", "import", "news", "z.csv")
    assert "skipped zed@example.org: erased on request" in r.output
