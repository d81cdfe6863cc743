"""Several processes on one database: migrations once, writers wait instead of failing."""

from __future__ import annotations

import threading
from pathlib import Path

from pbtp_mailer.store import Store
from pbtp_mailer.store.migrations import MIGRATIONS, applied_migrations


def test_parallel_opens_migrate_once(db_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(4, timeout=30)

    def open_one() -> None:
        try:
            barrier.wait()
            Store.from_url(db_url).close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with Store.from_url(db_url) as s:
        assert applied_migrations(s.engine) == [m.name for m in MIGRATIONS]


def test_unsubscribes_during_an_import(db_url: str, tmp_path: Path) -> None:
    with Store.from_url(db_url) as s:
        ml = s.create_list("news")
        for i in range(20):
            s.add_subscriber("news", f"early{i}@example.org")
    rows = "".join(f"p{i}@example.org,P {i}\n" for i in range(20_000))
    (tmp_path / "big.csv").write_text("email,name\n" + rows, encoding="utf-8")
    errors: list[BaseException] = []

    def importer() -> None:
        try:
            with Store.from_url(db_url) as s:
                s.import_csv("news", tmp_path / "big.csv")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=importer)
    t.start()
    with Store.from_url(db_url) as s:
        for i in range(20):
            assert s.unsubscribe(f"early{i}@example.org", "news", source="one-click")
    t.join(120)
    assert errors == []
    with Store.from_url(db_url) as s:
        assert sum(1 for _ in s.recipients("news")) == 20_000
        assert all(s.is_suppressed(f"early{i}@example.org", ml.id) for i in range(20))
