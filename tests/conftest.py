"""Shared fixtures: the shipped config and the March 2024 issue, composed once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARCH = ROOT / "issues" / "2024-03.yaml"
SEED = ROOT / "tests" / "fixtures" / "seed-2024-03.txt"  # the program's own March 2024 text
TEST_SECRET = "test-secret-0123456789abcdef0123456789"


@pytest.fixture(scope="session")
def config():
    from pbtp_mailer.config import load_config

    return load_config(ROOT / "pbtp-mailer.toml", environ={"PBTP_MAILER_SECRET": TEST_SECRET})


@pytest.fixture(scope="session")
def march(config):
    from pbtp_mailer.issue.model import load_issue

    return load_issue(MARCH)


@pytest.fixture(scope="session")
def rendition(config, march):
    from pbtp_mailer.compose import compose

    return compose(march, config)


@pytest.fixture(scope="session")
def built(tmp_path_factory, config):
    """The March issue built once, as an editor would with `pbtp-mailer build`."""
    from pbtp_mailer.compose.build import build_issue

    out = tmp_path_factory.mktemp("build")
    return build_issue(MARCH, config, out)


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """A scratch copy of the project's config, issues and layouts, as the working directory."""
    shutil.copy(ROOT / "pbtp-mailer.toml", tmp_path / "pbtp-mailer.toml")
    shutil.copytree(ROOT / "issues", tmp_path / "issues")
    shutil.copytree(ROOT / "layouts", tmp_path / "layouts")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PBTP_MAILER_CONFIG", raising=False)
    monkeypatch.delenv("PBTP_MAILER_DATABASE_URL", raising=False)
    monkeypatch.setenv("PBTP_MAILER_SECRET", TEST_SECRET)
    return tmp_path


# One Chromium for the whole run: only one Playwright sync session may be live at once.
from tests.support.browser import browser, chromium_path  # noqa: E402, F401
