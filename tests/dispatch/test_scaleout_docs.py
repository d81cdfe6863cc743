"""docs/scale-out.md stays true: its systemd template unit verifies."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

DOC = ROOT / "docs" / "scale-out.md"


def test_the_fleet_is_documented():
    text = DOC.read_text(encoding="utf-8")
    for word in ("pbtp-mailer send", "pbtp-mailer status", "--resend-unknown", "rate_buckets",
                 "bench/ledger_ceiling.py", "PBTP_MAILER_DATABASE_URL", "PBTP_MAILER_SECRET"):
        assert word in text, word
    assert "docs/scale-out.md" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_documented_template_unit_verifies(tmp_path):
    text = DOC.read_text(encoding="utf-8")
    units = re.findall(r"```ini\n# /etc/systemd/system/(\S+)\n(.*?)```", text, re.S)
    assert [name for name, _ in units] == ["pbtp-send@.service"]
    (tmp_path / ".pbtp-mailer").mkdir()
    (tmp_path / ".pbtp-mailer" / "send.env").write_text(
        "PBTP_MAILER_SECRET=x\nPBTP_ISSUE=issues/2026-03.yaml\nPBTP_LIST=members\n")
    body = (units[0][1].replace("/srv/pbtp/.venv/bin/pbtp-mailer", shutil.which("true") or "/bin/true")
            .replace("User=pbtp\n", "").replace("/srv/pbtp", str(tmp_path)))
    path = tmp_path / "pbtp-send@1.service"
    path.write_text(body)
    run = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
