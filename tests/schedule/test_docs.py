"""docs/schedule.md stays true: commands, the crontab line, the systemd units."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOC = ROOT / "docs" / "schedule.md"


def test_commands_and_options_are_documented():
    text = DOC.read_text(encoding="utf-8")
    for word in ("pbtp-mailer dispatch-due", "pbtp-mailer schedule", "--install-cron", "--now",
                 "--log-file", "--issues-dir", "--every", "stale_after_hours",
                 "schedule_problems"):
        assert word in text, word


def test_documented_crontab_line_is_what_install_cron_prints():
    from pbtp_mailer.config import config_from_dict
    from pbtp_mailer.schedule.crontab import cron_entry

    raw = tomllib.loads((ROOT / "pbtp-mailer.toml").read_text(encoding="utf-8"))
    config = config_from_dict(raw, Path("/srv/pbtp/pbtp-mailer.toml"), {})
    line = cron_entry(config, command=["/srv/pbtp/.venv/bin/pbtp-mailer"])
    assert line in DOC.read_text(encoding="utf-8").splitlines()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_documented_systemd_units_verify(tmp_path):
    text = DOC.read_text(encoding="utf-8")
    units = re.findall(r"```ini\n# /etc/systemd/system/(\S+)\n(.*?)```", text, re.S)
    assert [name for name, _ in units] == ["pbtp-dispatch-due.service",
                                          "pbtp-dispatch-due.timer"]
    (tmp_path / ".pbtp-mailer").mkdir()
    (tmp_path / ".pbtp-mailer" / "env").write_text("PBTP_MAILER_SECRET=x\n")
    paths = []
    for name, body in units:
        body = (body.replace("/srv/pbtp/.venv/bin/pbtp-mailer", shutil.which("true") or "/bin/true")
                .replace("User=pbtp\n", "").replace("/srv/pbtp", str(tmp_path)))
        (tmp_path / name).write_text(body)
        paths.append(str(tmp_path / name))
    run = subprocess.run(["systemd-analyze", "verify", *paths], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
