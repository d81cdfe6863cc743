"""A whole site for sign-up tests: store, config, aiosmtpd for the mails, waitress serving.

``site`` gives the running pieces; ``site.mails()`` returns the messages the
SMTP server accepted (parsed), ``site.links(msg)`` the URLs in a mail's text.
Runs on SQLite, or on PostgreSQL when $PBTP_TEST_POSTGRES_URL is set.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pbtp_mailer.config import config_from_dict
from pbtp_mailer.store import Store
from tests.store.conftest import CONFIG, SECRET, database_url
from tests.support.smtpd import FakeSMTPServer, free_port
from tests.support.waitress import serving
from tests.web.conftest import Served


@dataclass
class Site:
    store: Store
    config: Any
    smtp: FakeSMTPServer
    http: Served
    config_path: Path
    db_url: str

    def mails(self) -> list[Any]:
        return [m.message for m in self.smtp.messages]

    @staticmethod
    def text(msg: Any) -> str:
        return str(msg.get_body(preferencelist=("plain",)).get_content())

    def links(self, msg: Any) -> list[str]:
        return re.findall(r"<(https?://[^>\s]+)>", self.text(msg))

    def path(self, url: str) -> str:
        assert url.startswith(self.http.base + "/"), url
        return url[len(self.http.base):]

    def public(self, name: str, description: str = "") -> Any:
        self.store.create_list(name, description)
        return self.store.signups.set_public(name, True)


def site_config(port: int, smtp_port: int, extra: str = "") -> str:
    return (f'default_sender = "mail"\n{CONFIG}\n'
            f'[senders.mail]\nkind = "smtp"\nhost = "127.0.0.1"\nport = {smtp_port}\n'
            f'tls = "none"\n\n[web]\nbase_url = "http://127.0.0.1:{port}/"\n\n'
            f"[subscribe]\nper_ip_per_hour = 1000\n{extra}")


def serve(app: Any, port: int) -> Iterator[Served]:
    with serving(app, port=port) as bound:
        yield Served("127.0.0.1", bound)


@pytest.fixture
def site_extra() -> str:
    """More ``[subscribe]`` lines for one test (override in a module)."""
    return ""


@pytest.fixture
def site(tmp_path: Path, site_extra: str) -> Iterator[Site]:
    from pbtp_mailer.web.app import make_site, site_mounts

    db_url = database_url(tmp_path)
    port = free_port()
    with FakeSMTPServer() as smtp:
        text = site_config(port, smtp.port, site_extra)
        path = tmp_path / "pbtp-mailer.toml"
        path.write_text(text, encoding="utf-8")
        env = {"PBTP_MAILER_SECRET": SECRET}
        if not db_url.startswith("sqlite:"):
            env["PBTP_MAILER_DATABASE_URL"] = db_url
        config = config_from_dict(tomllib.loads(text), path, env)
        store = Store.from_url(db_url)
        try:
            for served in serve(make_site(site_mounts(store, config)), port):
                yield Site(store, config, smtp, served, path, db_url)
        finally:
            store.close()
