"""Fixtures for the subscriber store: a migrated SQLite store with a fixed clock."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pbtp_mailer.store import Store

SECRET = "test-secret-0123456789abcdef"


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def database_url(tmp_path: Path) -> str:
    """SQLite in tmp_path, or the PostgreSQL of $PBTP_TEST_POSTGRES_URL (emptied first)."""
    pg = os.environ.get("PBTP_TEST_POSTGRES_URL")
    if pg:
        from sqlalchemy import text

        from pbtp_mailer.store.db import open_engine

        engine = open_engine(pg)
        try:
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        finally:
            engine.dispose()
        return pg
    return f"sqlite:///{tmp_path / 'data' / 'mailer.sqlite3'}"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """The test's database: the one the temp config names, or PostgreSQL (see above)."""
    return database_url(tmp_path)


@pytest.fixture
def db(db_url: str):
    """``db()`` opens the test's database as a Store (use it as a context manager)."""
    return lambda: Store.from_url(db_url)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(db_url: str, clock: FakeClock) -> Iterator[Store]:
    s = Store.from_url(db_url, clock=clock)
    try:
        yield s
    finally:
        s.close()


CONFIG = """\
[newsletter]
name = "Alliance PBTP News"
from = "Alliance PBTP News <newsletter@example.org>"
postal_address = "Alliance PBTP (placeholder), 123 Example Street, Example City, ST 00000, USA"
web_base_url = "https://news.example.org/pbtp/"
unsubscribe_base_url = "https://news.example.org/pbtp/u/"
unsubscribe_mailto = "unsubscribe@example.org"
list_id = "Alliance PBTP News <pbtp-news.example.org>"

[database]
path = "data/mailer.sqlite3"
"""


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """A pbtp-mailer.toml in tmp_path whose database is a SQLite file there."""
    p = tmp_path / "pbtp-mailer.toml"
    p.write_text(CONFIG, encoding="utf-8")
    return p


@pytest.fixture
def cli_env(db_url: str, config_path: Path) -> dict[str, str | None]:
    """Environment for CliRunner: the temp config, a secret, no stray database URL."""
    env: dict[str, str | None] = {
        "PBTP_MAILER_SECRET": SECRET,
        "PBTP_MAILER_CONFIG": str(config_path),
        "PBTP_MAILER_DATABASE_URL": None,
    }
    if not db_url.startswith("sqlite:"):
        env["PBTP_MAILER_DATABASE_URL"] = db_url
    return env


@pytest.fixture
def cli(tmp_path: Path, cli_env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch):
    """Run ``pbtp-mailer ARGS`` in tmp_path through CliRunner; returns the Result."""
    from click.testing import CliRunner

    from pbtp_mailer.cli import main

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        return runner.invoke(main, list(args), env=cli_env, input=input, catch_exceptions=False)

    return run
