"""dispatch-due and schedule through CliRunner: exact user text, exit codes, the log."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pbtp_mailer.cli import main
from pbtp_mailer.schedule.lock import RunLock
from pbtp_mailer.schedule.run import LOCK_FILE
from tests.conftest import TEST_SECRET

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ( issue=\S+)?( list=\S+)? event=[a-z-]+"
                  r"( [a-z_]+=(\"([^\"\\]|\\.)*\"|\S+))*$")


@pytest.fixture()
def cli(sworld, monkeypatch):
    monkeypatch.delenv("PBTP_MAILER_CONFIG", raising=False)
    monkeypatch.delenv("PBTP_MAILER_DATABASE_URL", raising=False)
    monkeypatch.setenv("PBTP_MAILER_SECRET", TEST_SECRET)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, ["--config", str(sworld.root / "pbtp-mailer.toml"), *args])

    return run


def outbox(sworld) -> list[Path]:
    new = sworld.root / ".pbtp-mailer" / "outbox" / "new"
    return sorted(new.iterdir()) if new.is_dir() else []


def test_dispatch_due_is_quiet_on_success(sworld, cli):
    sworld.make_list(6)
    sworld.schedule("2026-03-05T09:00:00", issue_id="2026-03")
    log = sworld.root / "logs" / "dispatch.log"
    result = cli("dispatch-due", "--now", "2026-03-05T14:59:00Z", "--log-file", str(log))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert not log.exists()
    result = cli("dispatch-due", "--now", "2026-03-05T15:00:00Z", "--log-file", str(log))
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")
    assert len(outbox(sworld)) == 6
    lines = log.read_text().splitlines()
    assert [line.split(" event=")[1].split()[0] for line in lines] == ["dispatch", "sent"]
    assert all(LINE.match(line) for line in lines), lines
    assert "@" not in log.read_text()  # no subscriber data


def test_dispatch_due_problems_one_line_each_exit_1(sworld, cli):
    sworld.make_list(2)
    path = sworld.schedule("2026-03-05T09:00:00", issue_id="2026-03")
    sworld.schedule("2026-03-08T02:30:00", issue_id="2026-04")
    result = cli("dispatch-due", "--now", "2026-03-07T15:00:00Z")
    assert result.exit_code == 1 and result.stdout == ""
    place = sworld.send_at_place(sworld.root / "issues" / "2026-04.yaml")
    assert result.stderr.splitlines() == [
        f"{place}: schedule.send_at: 2026-03-08T02:30:00 does not exist in America/Chicago "
        "(the clocks jump ahead from CST to CDT that night); choose another time or write "
        "the offset",
        f"{sworld.send_at_place(path)}: schedule.send_at: not sent to 'members': 2026-03-05 "
        "09:00 CST (15:00Z) is 48.0 h past (stale_after_hours = 24; first seen due "
        f"2026-03-07 15:00Z); send it by hand (pbtp-mailer send {path} --list members) or "
        "move send_at",
    ]
    assert outbox(sworld) == []


def test_dispatch_due_lock_notice_exit_0(sworld, cli):
    sworld.make_list(2)
    sworld.schedule("2026-03-05T09:00:00", issue_id="2026-03")
    with RunLock(sworld.config.data_dir / LOCK_FILE):
        result = cli("dispatch-due", "--now", "2026-03-05T15:00:00Z")
    assert result.exit_code == 0 and result.stdout == ""
    assert re.fullmatch(
        r"dispatch-due: another dispatch-due is running \(pid \d+ on \S+, since "
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ; lock \S+dispatch-due.lock\); exiting.\n",
        result.stderr), result.stderr
    assert outbox(sworld) == []


def test_dispatch_due_bad_now(cli):
    result = cli("dispatch-due", "--now", "2026-03-05T15:00:00")
    assert result.exit_code == 2
    assert "Invalid value for '--now': '2026-03-05T15:00:00' has no offset" in result.stderr


def test_schedule_listing(sworld, cli, memory):
    sworld.make_list(3)
    sworld.schedule("2026-03-05T09:00:00", issue_id="2026-03", lists=("members", "other"))
    sworld.schedule("2026-04-02T09:00:00", issue_id="2026-04")
    sworld.schedule("2026-02-01T09:00:00-06:00", issue_id="2026-02")
    sworld.schedule("2026-01-01T09:00:00Z", issue_id="2026-01")
    sworld.due("2026-02-01T15:00:00Z", sender=memory)  # 2026-01 stale, 2026-02 sent
    result = cli("schedule", "--now", "2026-03-05T15:00:00Z")
    assert result.exit_code == 0, result.output
    table, cron = result.stdout.split("\n\n")
    assert table.splitlines() == [
        "ISSUE    SEND AT (America/Chicago)  UTC                LIST     STATE",
        "2026-01  2026-01-01 03:00 CST       2026-01-01 09:00Z  members  stale",
        "2026-02  2026-02-01 09:00 CST       2026-02-01 15:00Z  members  done",
        "2026-03  2026-03-05 09:00 CST       2026-03-05 15:00Z  members  due",
        "2026-03  2026-03-05 09:00 CST       2026-03-05 15:00Z  other    due",
        "2026-04  2026-04-02 09:00 CDT       2026-04-02 14:00Z  members  upcoming",
    ]
    assert cron.splitlines()[0] == ("Crontab entry (crontab -e; or pbtp-mailer schedule "
                                    "--install-cron):")
    assert cron.splitlines()[1].startswith("*/5 * * * * cd ")


def test_schedule_invalid_issue_exit_2(sworld, cli):
    sworld.schedule("2026-11-01T01:30:00", issue_id="2026-11")
    result = cli("schedule", "--now", "2026-03-05T15:00:00Z")
    assert result.exit_code == 2
    assert result.stdout.startswith("No scheduled issues")
    assert "happens twice in America/Chicago" in result.stderr


def test_install_cron_prints_absolute_entry(sworld, cli):
    result = cli("schedule", "--install-cron", "--every", "10")
    assert result.exit_code == 0
    root = sworld.root
    exe = str(Path(os.path.abspath(sys.executable)).parent / "pbtp-mailer")
    data = root / ".pbtp-mailer"
    assert result.stdout.splitlines() == [
        f"# pbtp-mailer: send due issues every 10 minutes (secrets: {data}/env; see "
        "docs/schedule.md)",
        f"*/10 * * * * cd {root} && set -a && . {data}/env && set +a && {exe} --config "
        f"{root}/pbtp-mailer.toml dispatch-due --log-file {data}/dispatch.log >>{data}/cron.out 2>&1",
    ]
    assert result.stderr == (
        f"Warning: {data}/env does not exist: create it with the secrets cron needs, one "
        "NAME=value a line (PBTP_MAILER_SECRET=..., each sender's password_env), then chmod "
        f"600 {data}/env\n")
    env = data / "env"
    data.mkdir()
    env.write_text("PBTP_MAILER_SECRET=x\n")
    env.chmod(0o644)
    assert "readable by others (mode 644)" in cli("schedule", "--install-cron").stderr
    env.chmod(0o600)
    assert cli("schedule", "--install-cron").stderr == ""


def test_cron_entry_quotes_and_escapes(sworld):
    from pbtp_mailer.config import load_config
    from pbtp_mailer.schedule.crontab import cron_entry

    odd = sworld.root / "a b%c"
    odd.mkdir()
    (odd / "pbtp-mailer.toml").write_text((sworld.root / "pbtp-mailer.toml").read_text())
    config = load_config(odd / "pbtp-mailer.toml", environ={})
    line = cron_entry(config, command=["/opt/x/pbtp-mailer"])
    assert line.startswith(f"*/5 * * * * cd '{sworld.root}/a b\\%c' && set -a && . ")


def test_help_texts(cli):
    for cmd in ("dispatch-due", "schedule"):
        result = cli(cmd, "--help")
        assert result.exit_code == 0 and "--now" in result.output
