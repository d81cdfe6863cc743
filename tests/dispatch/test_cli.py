"""send, test-send and status through the CLI, as a user types them."""

from __future__ import annotations

import email
import email.policy
import json
import mailbox

import pytest
from click.testing import CliRunner

from pbtp_mailer.cli import main

ISSUE = "issues/2024-03.yaml"


@pytest.fixture()
def cli(project):
    runner = CliRunner()

    def run(*args, **kw):
        return runner.invoke(main, list(args), catch_exceptions=False, **kw)

    run("lists", "create", "members")
    (project / "m.csv").write_text(
        "email,name,institution\n" + "".join(
            f"m{i}@example.com,Member {i},Example Hospital\n" for i in range(12)),
        encoding="utf-8")
    assert run("lists", "import", "members", "m.csv").exit_code == 0
    return run


def outbox(project):
    box = mailbox.Maildir(project / ".pbtp-mailer" / "outbox", create=False)
    try:
        return [email.message_from_bytes(box.get_bytes(k), policy=email.policy.default)
                for k in box.keys()]
    finally:
        box.close()


def test_send_refuses_without_yes_when_not_a_terminal(cli, project):
    result = cli("send", ISSUE, "--list", "members")
    assert result.exit_code == 1
    assert "Error: not a terminal: pass --yes to send without asking" in result.output
    assert not (project / ".pbtp-mailer" / "outbox").exists()


def test_dry_run_prints_and_records_nothing(cli, project):
    result = cli("send", ISSUE, "--list", "members", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Dry run: would send 12 messages" in result.output
    assert "to list 'members'; 0 suppressed subscribers skipped." in result.output
    assert "\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\n" in result.output
    assert "Nothing was sent or recorded." in result.output
    assert cli("status", ISSUE).output == "Issue 2024-03 has not been dispatched.\n"


def test_send_then_status_then_resume(cli, project):
    result = cli("send", ISSUE, "--list", "members", "--yes")
    assert result.exit_code == 0, result.output
    assert "List:       members (12 recipients after suppression; 0 suppressed)" in result.output
    assert "Sender:     outbox" in result.output
    assert "This run: sent 12, failed 0, deferred 0" in result.output
    assert len(outbox(project)) == 12
    status = cli("status", ISSUE)
    assert "Issue 2024-03 -> list 'members' via outbox: done" in status.output
    assert "recipients 12: sent 12, failed 0" in status.output
    data = json.loads(cli("status", ISSUE, "--json").output)
    assert data[0]["counts"]["sent"] == 12 and data[0]["ambiguous"] == []
    rows = cli("status", ISSUE, "--recipients", "sent").output.strip().splitlines()
    assert len(rows) == 12
    ids = {m["Message-ID"] for m in outbox(project)}
    assert {r.split("\t")[3] for r in rows} == ids
    again = cli("send", ISSUE, "--list", "members", "--yes")
    assert "This run: sent 0" in again.output and again.exit_code == 0
    assert len(outbox(project)) == 12


def test_unknown_list_and_sender_are_clear(cli):
    r = cli("send", ISSUE, "--list", "nope", "--yes")
    assert r.exit_code == 2
    assert "Error: unknown list 'nope' (known: members)" in r.output
    r = cli("send", ISSUE, "--list", "members", "--sender", "carrier-pigeon", "--yes")
    assert r.exit_code == 2
    assert "unknown sender 'carrier-pigeon' (configured senders: outbox, console, relay;" \
        in r.output


def test_missing_secret_is_refused_before_anything(cli, project, monkeypatch):
    monkeypatch.delenv("PBTP_MAILER_SECRET")
    r = cli("send", ISSUE, "--list", "members", "--yes")
    assert r.exit_code == 2
    assert "PBTP_MAILER_SECRET is not set" in r.output
    assert not (project / ".pbtp-mailer" / "outbox").exists()


def test_test_send_marks_copies_and_never_touches_the_ledger(cli, project):
    r = cli("test-send", ISSUE, "--to", "Reviewer.One@Example.org", "--to", "two@example.net",
            "--to", "reviewer.one@example.org")
    assert r.exit_code == 0, r.output
    assert "to 2 reviewer(s):" in r.output
    msgs = outbox(project)
    assert len(msgs) == 2
    for m in msgs:
        assert m["Subject"].startswith("[TEST] ")
        assert m["X-PBTP-Test-Send"] == "yes"
        text = m.get_body(("plain",)).get_content()
        html = m.get_body(("html",)).get_content()
        assert "TEST SEND: this is a review copy" in text and "TEST SEND: this is a review copy" in html
        assert "/u/test-send-no-action>" in text
        assert "test-send-no-action" in m["List-Unsubscribe"]
    assert cli("status", ISSUE).output == "Issue 2024-03 has not been dispatched.\n"


def test_test_send_cap_and_bad_address(cli):
    args = ["test-send", ISSUE]
    for i in range(21):
        args += ["--to", f"r{i}@example.org"]
    r = cli(*args)
    assert r.exit_code == 1
    assert "Error: 21 test recipients is more than the cap of 20" in r.output
    r = cli("test-send", ISSUE, "--to", "not-an-address")
    assert r.exit_code == 1 and "Error: 'not-an-address': invalid address" in r.output
