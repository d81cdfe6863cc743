"""Benchmark: import a 100,000-row CSV into a fresh SQLite store, then again.

    python bench/import_csv.py [--rows N] [--url DATABASE_URL]

Prints the time of the first import (all rows new), of the re-import (no
change), of iterating ``Store.recipients`` and of ``Store.is_suppressed``
(the per-send check of the dispatcher). The target of issue 3 is "well
under 10 s" for the first import. With ``--url`` it runs against another
database (e.g. the PostgreSQL of scripts/start-postgres.sh), which must be
empty.

Measured 2026-11-24 on a 2-core container, Python 3.11.7, SQLAlchemy 2.1,
email-validator 2.4 (about half of the first import is address validation):

    backend     first import   re-import   recipients()   is_suppressed
    sqlite          4.7 s         3.9 s        1.4 s          73 µs
    postgresql      7.0 s         5.8 s        1.0 s         ~350 µs (local PG 15)
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pbtp_mailer.store import Store  # noqa: E402

INSTITUTIONS = ["Example University", "Example Hospital", "Université Exemple",
                "Example Clinic", "Example Research Institute"]
ROLES = ["nurse", "surgeon", "physician", "researcher", "pharmacist", "student"]
DOMAINS = ["example.org", "example.com", "example.net"]


def write_csv(path: Path, rows: int, seed: int = 3) -> None:
    rnd = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["email", "name", "institution", "role"])
        for i in range(rows):
            first = rnd.choice(["Ann", "Bob", "Chloé", "Dev", "Eun-ji", "Femi", "Gus"])
            w.writerow([f"{first.lower()}.{i}@{DOMAINS[i % 3]}", f"{first} Example{i}",
                        rnd.choice(INSTITUTIONS), rnd.choice(ROLES)])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--url", default=None, help="database URL (default: SQLite in a temp dir)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pbtp-bench-") as tmp:
        csv_path = Path(tmp) / "members.csv"
        write_csv(csv_path, args.rows)
        url = args.url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        with Store.from_url(url) as store:
            ml = store.create_list("bench")
            t = time.perf_counter()
            first = store.import_csv("bench", csv_path)
            t_first = time.perf_counter() - t
            t = time.perf_counter()
            again = store.import_csv("bench", csv_path)
            t_again = time.perf_counter() - t
            t = time.perf_counter()
            count = sum(1 for _ in store.recipients("bench"))
            t_iter = time.perf_counter() - t
            step = max(1, args.rows // 2000)
            sample = [f"ann.{i}@example.org" for i in range(0, args.rows, step)]
            t = time.perf_counter()
            for e in sample:
                store.is_suppressed(e, ml.id)
            t_check = (time.perf_counter() - t) / len(sample)
        backend = url.split(":", 1)[0]
        print(f"backend: {backend}, rows: {args.rows:,}, Python {sys.version.split()[0]}")
        print(f"first import:   {t_first:6.2f} s  ({first.added:,} added, "
              f"{len(first.rejected)} rejected)")
        print(f"re-import:      {t_again:6.2f} s  ({again.added} added, {again.updated} updated, "
              f"{again.unchanged:,} unchanged)")
        print(f"recipients():   {t_iter:6.2f} s  ({count:,} recipients)")
        print(f"is_suppressed:  {t_check * 1e6:6.0f} µs per call")
        ok = first.added == args.rows and again.added == 0 and again.updated == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
