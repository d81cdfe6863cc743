"""Finding 4: a command that writes a file a person named writes all of it or nothing."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pbtp_mailer.cli import main
from tests.support.tinyfs import fill, tiny_fs


@pytest.fixture()
def cli(project):
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, list(args))

    return run


def test_finding4_export_of_unknown_list_keeps_the_file(cli, project):
    keep = project / "members.csv"
    keep.write_text("email,name\nann@example.org,Ann\n", encoding="utf-8")
    assert cli("lists", "create", "members").exit_code == 0
    result = cli("lists", "export", "membres", "-o", str(keep))
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: unknown list 'membres' (known: members)")
    assert keep.read_text(encoding="utf-8") == "email,name\nann@example.org,Ann\n"
    assert sorted(p.name for p in project.iterdir() if p.name.startswith(".members")) == []


def test_finding4_export_on_a_full_disk_keeps_the_old_file(cli, project):
    assert cli("lists", "create", "members").exit_code == 0
    (project / "people.csv").write_text("email,name\n" + "".join(
        f"person{i:05d}@example.com,Person {i}\n" for i in range(3000)), encoding="utf-8")
    assert cli("lists", "import", "members", "people.csv").exit_code == 0
    with tiny_fs(project / "tiny", "128k") as where:
        keep = where / "export.csv"
        keep.write_text("the previous export\n", encoding="utf-8")
        fill(where, leave=16 * 1024)
        result = cli("lists", "export", "members", "-o", str(keep))
        assert result.exit_code == 1, result.output
        assert result.stderr == f"Error: {keep}: cannot write: No space left on device\n"
        assert keep.read_text(encoding="utf-8") == "the previous export\n"
        assert sorted(p.name for p in where.iterdir()) == [".filler", "export.csv"]


def test_finding4_new_on_a_full_disk_leaves_no_half_files(cli, project):
    with tiny_fs(project / "tiny", "64k") as where:
        issues = where / "issues"
        issues.mkdir()
        fill(where, leave=2 * 1024)
        result = cli("new", "2024-04", "--issues-dir", str(issues))
        assert result.exit_code == 1, result.output
        assert result.stderr.endswith(": cannot write: No space left on device\n"), result.output
        assert "Traceback" not in result.output
        assert list(issues.iterdir()) == []


def test_finding4_schema_output_is_all_or_nothing(cli, project):
    keep = project / "schema.json"
    keep.write_text("{}\n", encoding="utf-8")
    assert cli("schema", "-o", str(keep)).exit_code == 0
    assert keep.read_text(encoding="utf-8").startswith("{\n")
    assert [p.name for p in project.iterdir() if p.name.startswith(".schema")] == []
