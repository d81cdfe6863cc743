"""The flock run lock: busy notice, clean release, takeover after kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from pbtp_mailer.schedule.lock import LockBusyError, RunLock


def test_second_holder_is_refused_with_the_holders_note(tmp_path):
    path = tmp_path / "d" / "x.lock"
    with RunLock(path) as first:
        assert first.took_over is None
        with pytest.raises(LockBusyError) as err:
            RunLock(path).acquire()
        assert err.value.holder is not None and err.value.holder.pid == os.getpid()
        assert str(err.value).startswith(f"another dispatch-due is running (pid {os.getpid()} on ")
        assert err.value.exit_code == 0
    assert path.read_text() == ""  # a clean release leaves an empty file
    with RunLock(path) as again:
        assert again.took_over is None


def test_lock_of_a_killed_process_is_taken_over(tmp_path):
    path = tmp_path / "x.lock"
    code = ("import sys, time; from pbtp_mailer.schedule.lock import RunLock; "
            f"RunLock({str(path)!r}).acquire(); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(LockBusyError):
            RunLock(path).acquire()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    lock = RunLock(path).acquire()
    try:
        assert lock.took_over is not None and lock.took_over.pid == proc.pid
    finally:
        lock.release()


def test_lock_file_is_never_deleted_and_not_inherited(tmp_path):
    path = tmp_path / "x.lock"
    lock = RunLock(path).acquire()
    try:
        assert lock._fd is not None and not os.get_inheritable(lock._fd)
    finally:
        lock.release()
    assert path.exists()
