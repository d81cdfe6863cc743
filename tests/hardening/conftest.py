"""Hypothesis profiles of the parser fuzz suite (tests/hardening/test_fuzz_*.py).

By default each parser gets about 100 examples, derandomized (the same
inputs every run), so the suite stays fast and a failure reproduces. With
``-m fuzz`` the suite runs alone, 2,000 random examples per parser (a
failure prints the seed: rerun with ``--hypothesis-seed=N``). Nothing is
stored between runs (no ``.hypothesis/`` folder).
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, settings

_COMMON = dict(
    deadline=dt.timedelta(seconds=2),  # the brief: any input is answered in under 2 s
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                           HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("pbtp", max_examples=100, derandomize=True, **_COMMON)
settings.register_profile("pbtp-fuzz", max_examples=2000, derandomize=False, **_COMMON)


def pytest_configure(config: pytest.Config) -> None:
    markexpr = config.getoption("markexpr", default="") or ""
    settings.load_profile("pbtp-fuzz" if "fuzz" in markexpr else "pbtp")
