"""Findings 2 and 3: a hostile or mistyped file in the issues folder never stops cron.

Each bad file is reported in one line ``FILE:LINE:COL: ...`` (exit 1 for
cron) and the good due issue beside it is still sent; ``schedule`` and
``archive`` report it and go on too.
"""

from __future__ import annotations

import re

import pytest

from tests.schedule.test_cli import cli, outbox  # noqa: F401 - fixtures

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))

BAD = {
    "impossible-date": 'id: "bad"\ndate: 2024-02-30\n',
    "huge-integer": 'id: "bad"\ncount: ' + "9" * 5000 + "\n",
    "self-alias": 'id: "bad"\nloop: &a [*a]\n',
    "deep-nesting": 'id: "bad"\ndeep: ' + "[" * 600 + "]" * 600 + "\n",
    "deep-mapping": 'id: "bad"\n' + "".join("  " * i + f"k{i}:\n" for i in range(600)),
    "alias-bomb": BOMB,
    "binary-subject": 'id: "bad"\nsubject: !!binary aGVsbG8=\n',
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_finding2_bad_file_does_not_stop_due_issue(sworld, cli, name):  # noqa: F811
    sworld.make_list(4)
    sworld.schedule("2026-03-05T09:00:00", issue_id="2026-03")
    bad = sworld.root / "issues" / f"0-{name}.yaml"
    bad.write_text(BAD[name], encoding="utf-8")
    result = cli("dispatch-due", "--now", "2026-03-05T15:00:00Z")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and re.match(rf"^{re.escape(str(bad))}:\d+:\d+: ", lines[0]), lines
    assert len(outbox(sworld)) == 4  # the due issue beside it was sent


@pytest.mark.parametrize("name", ["self-alias", "alias-bomb", "deep-nesting", "huge-integer"])
def test_finding2_schedule_and_archive_report_and_go_on(sworld, cli, name):  # noqa: F811
    sworld.schedule("2026-03-05T09:00:00", issue_id="2026-03")
    bad = sworld.root / "issues" / f"0-{name}.yaml"
    bad.write_text(BAD[name], encoding="utf-8")
    shown = cli("schedule", "--now", "2026-03-01T00:00:00Z")
    assert shown.exit_code == 2 and "Traceback" not in shown.output
    assert "2026-03" in shown.stdout
    assert re.match(rf"^{re.escape(str(bad))}:\d+:\d+: ", shown.stderr), shown.stderr
    site = sworld.root / "site"
    built = cli("archive", "--issues-dir", str(sworld.root / "issues"), "-o", str(site))
    assert "Traceback" not in built.output, built.output
    assert built.exit_code in (0, 1), built.output
    assert f"{bad}: invalid, left out ({bad}:" in built.output
    assert (site / "index.html").exists()
