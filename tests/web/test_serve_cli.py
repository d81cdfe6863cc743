"""`pbtp-mailer serve` as a user runs it: a real process on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.store.conftest import CONFIG, SECRET
from tests.web.conftest import Served

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_one_click(tmp_path: Path, store, member, db_url_for_cli) -> None:
    token, list_id = member
    (tmp_path / "pbtp-mailer.toml").write_text(CONFIG, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PBTP_MAILER_")}
    env.update(PBTP_MAILER_CONFIG=str(tmp_path / "pbtp-mailer.toml"), PBTP_MAILER_SECRET=SECRET)
    if db_url_for_cli:
        env["PBTP_MAILER_DATABASE_URL"] = db_url_for_cli
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pbtp_mailer", "serve", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "serve exited early"
            assert time.monotonic() < deadline, "serve did not start listening in 30 s"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        served = Served("127.0.0.1", port)
        status, _, body = served.request("GET", f"/u/{token}")
        assert status == 200 and b"Unsubscribe from news" in body
        assert not store.is_suppressed("ann@example.org", list_id)
        status, headers, _ = served.request(
            "POST", f"/u/{token}", b"List-Unsubscribe=One-Click",
            {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200 and "location" not in headers
        assert store.is_suppressed("ann@example.org", list_id)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert f"Serving unsubscribe links on http://127.0.0.1:{port}/u/TOKEN".encode() in err
