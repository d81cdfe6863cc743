"""dispatch-due as cron runs it: real processes, real SMTP on 127.0.0.1, kill -9, env -i."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET
from tests.support.smtpd import FakeSMTPServer
from tests.support.wire import delivered, env_for, ledger_rows

pytestmark = pytest.mark.slow

NOW = "2026-03-05T15:00:00Z"
NOTICE = "dispatch-due: another dispatch-due is running"


def due_cmd(world, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pbtp_mailer", "--config", str(world.root / "pbtp-mailer.toml"),
            "dispatch-due", "--now", NOW, "--log-file", str(world.root / "dispatch.log"), *extra]








def test_two_dispatch_due_at_once_send_each_recipient_once(sworld):
    emails = sworld.make_list(300)
    with FakeSMTPServer() as server:
        sworld.schedule("2026-03-05T09:00:00", issue_id="2026-03",
                        sender=f"smtp://127.0.0.1:{server.port}?tls=none&rate=150/s")
        procs = [subprocess.Popen(due_cmd(sworld), env=env_for(sworld), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=120) for p in procs]
        got = delivered(server)
    assert [p.returncode for p in procs] == [0, 0], outs
    assert got == Counter({e: 1 for e in emails})
    errs = sorted(err for _, err in outs)
    assert errs[0] == "" and errs[1].startswith(NOTICE), errs  # one sent, one saw the lock
    assert all(out == "" for out, _ in outs)


def test_dispatch_due_and_a_send_by_hand_at_once(sworld):
    emails = sworld.make_list(300)
    with FakeSMTPServer() as server:
        url = f"smtp://127.0.0.1:{server.port}?tls=none&rate=150/s"
        path = sworld.schedule("2026-03-05T09:00:00", issue_id="2024-03", sender=url)
        by_hand = [sys.executable, "-m", "pbtp_mailer", "--config",
                   str(sworld.root / "pbtp-mailer.toml"), "send", str(path), "--list",
                   "members", "--sender", url, "--yes"]
        procs = [subprocess.Popen(cmd, env=env_for(sworld), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for cmd in (due_cmd(sworld), by_hand)]
        outs = [p.communicate(timeout=120) for p in procs]
        got = delivered(server)
    assert [p.returncode for p in procs] == [0, 0], outs
    assert got == Counter({e: 1 for e in emails})


def test_kill_minus_9_then_the_next_cron_run_completes(sworld):
    emails = sworld.make_list(400)
    with FakeSMTPServer() as server:
        sworld.schedule("2026-03-05T09:00:00", issue_id="2026-03",
                        sender=f"smtp://127.0.0.1:{server.port}?tls=none&rate=100/s")
        proc = subprocess.Popen(due_cmd(sworld), env=env_for(sworld),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(server.messages) < 100 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "finished before the kill: make the list larger"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        at_kill = len(server.messages)
        assert 100 <= at_kill < 400
        lock = sworld.root / ".pbtp-mailer" / "dispatch-due.lock"
        assert lock.read_text().startswith(f"{proc.pid} "), "the dead holder's note is left"
        final = subprocess.run(due_cmd(sworld), env=env_for(sworld), capture_output=True,
                               text=True, timeout=120)
        got = delivered(server)
    rows = ledger_rows(sworld.store())
    sent = {e for e, s in rows.items() if s == "sent"}
    ambiguous = {e for e, s in rows.items() if s == "sending"}
    assert set(rows) == set(emails)
    assert sent | ambiguous == set(emails)
    assert max(got.values()) == 1, "nobody got it twice"
    assert all(got[e] == 1 for e in sent)
    assert len(ambiguous) <= 1  # one SMTP connection: at most the message on the wire
    if ambiguous:
        assert final.returncode == 1
        assert "1 recipients were being sent when an earlier run stopped" in final.stderr
    else:
        assert (final.returncode, final.stderr) == (0, "")
    log = (sworld.root / "dispatch.log").read_text()
    assert f"event=lock-takeover msg=\"previous holder died holding it: pid {proc.pid} on " in log
    assert "why=resume" in log
    assert ("state=done" in log) == (not ambiguous)


def test_printed_crontab_line_runs_under_cron_environment(sworld, tmp_path):
    """The entry from `schedule --install-cron`, run as cron would: env -i, sh, no PATH."""
    emails = sworld.make_list(25)
    with FakeSMTPServer(users={"news": "cron-s3cret"}) as server:
        config = sworld.root / "pbtp-mailer.toml"
        text = config.read_text(encoding="utf-8")
        text = text.replace('host = "smtp.example.org"\nport = 587\ntls = "starttls"',
                            f'host = "127.0.0.1"\nport = {server.port}\ntls = "none"')
        assert f"port = {server.port}" in text
        config.write_text(text, encoding="utf-8")
        sworld.schedule("2026-03-05T09:00:00", issue_id="2024-03", sender="relay")
        data = sworld.root / ".pbtp-mailer"
        data.mkdir(exist_ok=True)
        env_file = data / "env"
        # plain NAME=value lines: the same file works as systemd's EnvironmentFile=
        env_file.write_text(f"PBTP_MAILER_SECRET={TEST_SECRET}\n"
                            "PBTP_SMTP_PASSWORD=cron-s3cret\n", encoding="utf-8")
        env_file.chmod(0o600)
        printed = subprocess.run(
            [str(Path(os.path.abspath(sys.executable)).parent / "pbtp-mailer"), "--config",
             str(config), "schedule", "--install-cron"],
            env={k: v for k, v in env_for(sworld).items() if not k.startswith("PBTP_")},
            capture_output=True, text=True, timeout=60, check=True)
        assert printed.stderr == ""
        entry = printed.stdout.splitlines()[1]
        fields = entry.split(" ", 5)
        assert fields[:5] == ["*/5", "*", "*", "*", "*"]
        command = fields[5].replace("\\%", "%")
        home = tmp_path / "home"
        home.mkdir()
        cron_env = ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={home}", "sh", "-c"]
        # the real entry has no --now: it runs at the wall clock, long after 2026-03-05,
        # which makes the issue stale; the stale report in cron.out proves config + secrets
        run = subprocess.run([*cron_env, command], cwd="/", capture_output=True, text=True,
                             timeout=120)
        assert (run.returncode, run.stdout, run.stderr) == (1, "", "")
        out = (data / "cron.out").read_text()
        assert "schedule.send_at: not sent to 'members'" in out
        assert "h past (stale_after_hours = 24; first seen due" in out
        assert len(server.messages) == 0
        # the same line at the issue's time (as if cron had run then): sends over AUTH
        (data / "cron.out").unlink()
        at_time = command.replace(" dispatch-due ", f" dispatch-due --now {NOW} ")
        run = subprocess.run([*cron_env, at_time], cwd="/", capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 0 and (data / "cron.out").read_text() == ""
        got = delivered(server)
        users = {m.user for m in server.messages}
    assert got == Counter({e: 1 for e in emails})
    assert users == {"news"}
    log = (data / "dispatch.log").read_text()
    assert "event=sent sent=25 failed=0" in log
    # without the env file nothing runs, and sh says why (cron mails that)
    env_file.unlink()
    run = subprocess.run([*cron_env, at_time], cwd="/", capture_output=True, text=True,
                         timeout=60)
    assert run.returncode != 0 and str(env_file) in run.stderr
    assert (data / "cron.out").read_text() == ""
    assert shlex.split(command)[:2] == ["cd", str(sworld.root)]
