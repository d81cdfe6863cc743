"""ruff and mypy, as configured in pyproject.toml, are part of the suite."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _tool(name: str) -> list[str]:
    from pathlib import Path

    here = str(Path(sys.executable).parent)
    exe = shutil.which(name, path=here) or shutil.which(name)
    if exe is None:
        pytest.skip(f"{name} is not installed (it is in the [test] extra)")
    return [exe]


def test_ruff():
    proc = subprocess.run([*_tool("ruff"), "check", "pbtp_mailer", "tests", "bench"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy():
    proc = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "pbtp_mailer"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
