"""Finding 6: a database error (the disk is full) is one line without personal data.

The database lives on a real tmpfs of 2 MB that the test fills;
SQLite then answers SQLITE_FULL. Before the fix, SQLAlchemy's message with
its bound parameters (the subscribers' addresses) reached stderr, which is
``cron.out`` in the documented set-up.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pbtp_mailer.cli import main
from tests.support.tinyfs import fill, tiny_fs

ISSUE = "issues/2024-03.yaml"


def _rows(n: int) -> str:
    return "email,name\n" + "".join(f"person{i:05d}@example.com,Person {i}\n" for i in range(n))


@pytest.fixture()
def full_disk_db(project, monkeypatch):
    """A SQLite database on a small filesystem; yields (cli, filesystem folder)."""
    if __import__("os").environ.get("PBTP_TEST_POSTGRES_URL"):
        pytest.skip("fills a local disk under SQLite")
    with tiny_fs(project / "tiny", "2m") as where:
        monkeypatch.setenv("PBTP_MAILER_DATABASE_URL", f"sqlite:///{where / 'mailer.sqlite3'}")
        runner = CliRunner()

        def run(*args: str):
            return runner.invoke(main, list(args))

        yield run, where


def _assert_one_clean_line(result, expected: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr == f"Error: {expected}\n"
    assert "@" not in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_finding6_disk_full_while_importing_prints_no_rows(full_disk_db, project):
    cli, where = full_disk_db
    assert cli("lists", "create", "members").exit_code == 0
    (project / "people.csv").write_text(_rows(3000), encoding="utf-8")
    fill(where, leave=96 * 1024)
    result = cli("lists", "import", "members", "people.csv")
    _assert_one_clean_line(result, "database error: disk full while importing; "
                                   "nothing was changed")
    (where / ".filler").unlink()
    shown = cli("lists")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines()[1].split()[:2] == ["members", "0"]  # nothing was changed


def test_finding6_disk_full_while_sending_prints_no_rows(full_disk_db, project):
    cli, where = full_disk_db
    assert cli("lists", "create", "members").exit_code == 0
    (project / "people.csv").write_text(_rows(400), encoding="utf-8")
    assert cli("lists", "import", "members", "people.csv").exit_code == 0
    fill(where, leave=96 * 1024)
    result = cli("send", ISSUE, "--list", "members", "--yes")
    _assert_one_clean_line(result, "database error: disk full while sending; what was "
                                   "recorded before stays; run the same command again to "
                                   "resume")
