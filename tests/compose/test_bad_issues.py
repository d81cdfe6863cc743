"""The bad-input corpus: each broken issue gives exactly the expected messages, exit 2,
and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pbtp_mailer.cli import main

BAD = Path(__file__).resolve().parents[1] / "bad"
CASES = sorted(BAD.glob("*.yaml"))


def test_corpus_is_large_enough():
    assert len(CASES) >= 15


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_bad_issue_reports_exact_problems(case, project):
    out = project / "out"
    result = CliRunner().invoke(main, ["build", str(case), "-o", str(out)])
    expected = case.with_suffix(".expected").read_text(encoding="utf-8").replace("{file}", str(case))
    assert result.exit_code == 2, result.output
    assert result.stderr == "Error: " + expected
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.rglob("*.html"))


def test_all_problems_reported_not_just_first(project):
    case = BAD / "16-many-problems.yaml"
    result = CliRunner().invoke(main, ["build", str(case)])
    lines = result.stderr.removeprefix("Error: ").strip().splitlines()
    assert len(lines) == 3
    assert [ln.split(": ")[1] for ln in lines] == [
        "subject", "masthead", "articles[0].byline.affilation"]


def test_failed_build_keeps_previous_output(project):
    out = project / "build"
    ok = CliRunner().invoke(main, ["build", "issues/2024-03.yaml", "-o", str(out)])
    assert ok.exit_code == 0, ok.output
    before = (out / "2024-03" / "email.html").read_bytes()
    broken = project / "issues" / "2024-03.yaml"
    broken.write_text(broken.read_text().replace("subject:", "subjct:"), encoding="utf-8")
    result = CliRunner().invoke(main, ["build", str(broken), "-o", str(out)])
    assert result.exit_code == 2
    assert "subjct: unknown key (did you mean 'subject'?)" in result.stderr
    assert (out / "2024-03" / "email.html").read_bytes() == before
