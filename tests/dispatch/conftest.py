"""A scratch project with a subscriber list, for dispatch tests."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, TEST_SECRET


class World:
    """A config in a temp folder, its SQLite store, and helpers to plan and run dispatches."""

    def __init__(self, root: Path, dispatch_settings: str = "") -> None:
        self.root = root
        shutil.copytree(ROOT / "issues", root / "issues")
        shutil.copytree(ROOT / "layouts", root / "layouts")
        text = (ROOT / "pbtp-mailer.toml").read_text(encoding="utf-8")
        text = text.split("[dispatch]")[0] + "[dispatch]\n" + (dispatch_settings or (
            "max_attempts = 6\nbackoff_base_seconds = 0.01\nbackoff_max_seconds = 0.05\n"
            "in_run_retry_seconds = 2.0\npause_after_consecutive_failures = 30\n"))
        (root / "pbtp-mailer.toml").write_text(text, encoding="utf-8")
        self.issue = root / "issues" / "2024-03.yaml"
        self.env = {"PBTP_MAILER_SECRET": TEST_SECRET}
        pg = os.environ.get("PBTP_TEST_POSTGRES_URL")
        if pg:  # the same tests on PostgreSQL (scripts/test.sh runs them twice)
            from tests.store.conftest import database_url

            self.env["PBTP_MAILER_DATABASE_URL"] = database_url(root)
        self._stores: list = []

    @property
    def config(self):
        from pbtp_mailer.config import load_config

        return load_config(self.root / "pbtp-mailer.toml", environ=self.env)

    def store(self):
        from pbtp_mailer.store import Store

        store = Store.open(self.config)
        self._stores.append(store)
        return store

    def make_list(self, n: int, name: str = "members", domain: str = "example.com") -> list[str]:
        path = self.root / f"{name}.csv"
        emails = [f"member{i:05d}@{domain}" for i in range(n)]
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["email", "name", "institution"])
            for i, e in enumerate(emails):
                w.writerow([e, f"Member {i}", "Example Cancer Center"])
        store = self.store()
        store.create_list(name)
        store.import_csv(name, path)
        return emails

    def plan(self, store, **options):
        from pbtp_mailer.dispatch.dispatcher import DispatchOptions, plan_dispatch

        opts = DispatchOptions(**{"list_name": "members", **options})
        return plan_dispatch(self.issue, self.config, store, opts), opts

    def run(self, store, sender=None, **options):
        from pbtp_mailer.dispatch.dispatcher import Dispatcher

        plan, opts = self.plan(store, **options)
        return Dispatcher(plan, opts, sender=sender).run()

    def close(self) -> None:
        for s in self._stores:
            s.close()


@pytest.fixture()
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.close()


@pytest.fixture()
def memory_sender():
    from pbtp_mailer.senders.memory import MemorySender

    def make(**options):
        return MemorySender(**options)

    return make
