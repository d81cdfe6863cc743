"""Finding 8: import only what can be sent; dry runs report bad rows; terminals stay clean."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pbtp_mailer.cli import main

ISSUE = "issues/2024-03.yaml"


@pytest.fixture()
def cli(project):
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, list(args))

    assert run("lists", "create", "members").exit_code == 0
    return run


def _insert_unchecked(project, email: str, name: str) -> None:
    """A row as an older version (or another tool) may have stored it."""
    from sqlalchemy import insert, select

    from pbtp_mailer.config import load_config
    from pbtp_mailer.store import Store
    from pbtp_mailer.store.schema import lists, memberships, subscribers

    store = Store.open(load_config(project / "pbtp-mailer.toml"))
    try:
        with store.engine.begin() as conn:
            now = store.clock()
            sid = conn.execute(insert(subscribers).values(
                email=email, email_key=email.lower(), name=name, attrs={}, created_at=now,
                updated_at=now)).inserted_primary_key[0]
            lid = conn.execute(select(lists.c.id).where(lists.c.name == "members")).scalar_one()
            conn.execute(insert(memberships).values(subscriber_id=sid, list_id=lid,
                                                    status="subscribed", changed_at=now))
    finally:
        store.close()


def test_finding8_import_refuses_what_cannot_be_sent(cli, project):
    (project / "people.csv").write_text(
        "email,name\n"
        "ann@example.org,Ann\n"
        "jörg@example.org,Jörg\n"
        "bob@example.org,Bob\x1b[2J\n"
        "cy@example.org,Cy\x0bVT\n"
        "di@example.org,Di\x85NEL\n"
        "ed@example.org,Ed\tTab\n", encoding="utf-8")
    result = cli("lists", "import", "members", "people.csv")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "people.csv:3: address 'jörg@example.org' has non-ASCII characters before the @: "
        "sending to it needs SMTPUTF8, which pbtp-mailer does not use",
        "people.csv:4: name 'Bob\\x1b[2J' contains the control character U+001B",
        "people.csv:5: name 'Cy\\x0bVT' contains the control character U+000B",
        "people.csv:6: name 'Di\\x85NEL' contains the control character U+0085",
    ]
    assert "2 added" in result.stdout  # ann and ed (a tab is allowed)


def test_finding8_dry_run_reports_bad_rows_like_a_send(cli, project):
    (project / "ok.csv").write_text("email,name\nann@example.org,Ann\n", encoding="utf-8")
    assert cli("lists", "import", "members", "ok.csv").exit_code == 0
    _insert_unchecked(project, "jörg@example.org", "Jörg")
    result = cli("send", ISSUE, "--list", "members", "--dry-run")
    assert result.exit_code == 3, result.output
    assert "Dry run: would send 1 messages" in result.stdout
    assert result.stderr == ("would fail jörg@example.org: refused before sending: "
                             "jörg@example.org: non-ASCII addresses need SMTPUTF8, not "
                             "supported\n")


def test_finding8_terminal_output_escapes_control_characters(cli, project):
    _insert_unchecked(project, "eve@example.org", "Eve\x1b]0;pwned\x07\u202e")
    result = cli("subscribers", "show", "eve@example.org")
    assert result.exit_code == 0
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "  name: Eve\\x1b]0;pwned\\x07\\u202e\n" in result.output
    listed = cli("lists", "import", "members", "nothere.csv")
    assert "\x1b" not in listed.output


def test_finding8_for_spreadsheet_defuses_the_email_column(cli, project):
    (project / "f.csv").write_text("email,name\n=1+2@example.org,=cmd\n-x@example.org,Ann\n",
                                   encoding="utf-8")
    assert cli("lists", "import", "members", "f.csv").exit_code == 0
    result = cli("lists", "export", "members", "--for-spreadsheet")
    rows = [line.split(",")[:2] for line in result.stdout.splitlines()[1:]]
    assert rows == [["'=1+2@example.org", "'=cmd"], ["'-x@example.org", "Ann"]]


def test_finding8_subscribers_add_applies_the_same_checks(cli):
    added = cli("subscribers", "add", "members", "jörg@example.org")
    assert (added.exit_code, added.stderr) == (1, (
        "Error: address 'jörg@example.org' has non-ASCII characters before the @: sending to "
        "it needs SMTPUTF8, which pbtp-mailer does not use\n"))
    named = cli("subscribers", "add", "members", "a@example.org", "--name", "A\x1bB")
    assert (named.exit_code, named.stderr) == (
        1, "Error: name 'A\\x1bB' contains the control character U+001B\n")
