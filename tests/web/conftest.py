"""Fixtures for the unsubscribe endpoint: a store, and the app on a real waitress server."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pbtp_mailer.config import config_from_dict
from pbtp_mailer.store import Store
from tests.store.conftest import CONFIG, SECRET, database_url
from tests.support.waitress import serving


@pytest.fixture
def web_config(tmp_path: Path):
    import tomllib

    return config_from_dict(tomllib.loads(CONFIG), tmp_path / "pbtp-mailer.toml",
                            {"PBTP_MAILER_SECRET": SECRET})


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite at the path the test config names, or $PBTP_TEST_POSTGRES_URL (emptied)."""
    return database_url(tmp_path)


@pytest.fixture
def db_url_for_cli(db_url: str) -> str | None:
    """What $PBTP_MAILER_DATABASE_URL must be for a CLI run on the same database."""
    return None if db_url.startswith("sqlite:") else db_url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.from_url(db_url)
    try:
        yield s
    finally:
        s.close()


@dataclass
class Served:
    host: str
    port: int

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """One real HTTP request on a fresh connection: (status, headers, body)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"


@pytest.fixture
def served(store: Store, web_config) -> Iterator[Served]:
    """make_app() served by waitress on a free 127.0.0.1 port, stopped cleanly after."""
    from pbtp_mailer.web.unsubscribe import make_app

    with serving(make_app(store, web_config.secret(), web_config.newsletter)) as port:
        yield Served("127.0.0.1", port)


@pytest.fixture
def member(store: Store, web_config):
    """(token, list id) for ann@example.org subscribed to 'news'."""
    from pbtp_mailer.tokens import make_token

    ml = store.create_list("news", "Monthly news")
    store.add_subscriber("news", "ann@example.org", name="Ann")
    (rec,) = list(store.recipients("news"))
    return make_token(web_config.secret(), rec.subscriber_id, ml.id), ml.id


@contextmanager
def serve_process(folder: Path, db_url: str | None, *,
                  keep_stderr: bool = False) -> Iterator[tuple[Served, Any]]:
    """``pbtp-mailer serve`` as a user runs it: a real process on a free 127.0.0.1 port,
    with the store's config written to ``folder``; yields once it accepts connections.
    With ``keep_stderr`` its stderr is in ``proc.stderr_text`` after the block."""
    from tests.store.conftest import CONFIG, SECRET

    (folder / "pbtp-mailer.toml").write_text(CONFIG, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PBTP_MAILER_")}
    env.update(PBTP_MAILER_CONFIG=str(folder / "pbtp-mailer.toml"), PBTP_MAILER_SECRET=SECRET)
    if db_url:
        env["PBTP_MAILER_DATABASE_URL"] = db_url
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "pbtp_mailer", "serve", "--port", str(port)],
        cwd=folder, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if keep_stderr else subprocess.DEVNULL)
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
        yield Served("127.0.0.1", port), proc
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
        proc.stderr_text = err or b""
