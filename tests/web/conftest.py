"""Fixtures for the unsubscribe endpoint: a store, and the app on a real waitress server."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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
