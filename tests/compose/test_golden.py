"""Golden files of the March issue. After an intended change, regenerate them with

    PBTP_UPDATE_GOLDEN=1 python -m pytest tests/compose/test_golden.py

and review the diff (git diff tests/golden) before committing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "2024-03"
UPDATE = os.environ.get("PBTP_UPDATE_GOLDEN") == "1"


def normalise_eml(raw: bytes) -> bytes:
    """Volatile parts: Date, Message-ID and the MIME boundary."""
    raw = re.sub(rb"^Date: [^\r]*", b"Date: <date>", raw, flags=re.M)
    raw = re.sub(rb"^Message-ID: [^\r]*", b"Message-ID: <message-id>", raw, flags=re.M)
    return re.sub(rb"=_pbtp_[0-9a-f]{24}", b"=_pbtp_<boundary>", raw)


@pytest.mark.parametrize("name", ["email.html", "email.txt", "web.html", "message.eml"])
def test_output_matches_golden(built, name):
    data = (built.folder / name).read_bytes()
    if name == "message.eml":
        data = normalise_eml(data)
    golden = GOLDEN / name
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(data)
    assert golden.exists(), f"missing {golden}: run PBTP_UPDATE_GOLDEN=1 pytest {__file__}"
    assert data == golden.read_bytes(), (
        f"{name} drifted from {golden}; if intended: PBTP_UPDATE_GOLDEN=1 pytest {__file__}")


def test_image_issue_text_matches_golden(tmp_path, config):
    """The text part of tests/compose/content_issue.py (images, links, citations, briefs).
    Its HTML names images by content hash, which depends on the PNG encoder: not golden."""
    from pbtp_mailer.compose.build import build_issue
    from tests.compose.content_issue import write_issue

    built = build_issue(write_issue(tmp_path), config, tmp_path / "build")
    data = (built.folder / "email.txt").read_bytes()
    golden = GOLDEN.with_name("2024-05-images") / "email.txt"
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(data)
    assert golden.exists(), f"missing {golden}: run PBTP_UPDATE_GOLDEN=1 pytest {__file__}"
    assert data == golden.read_bytes(), (
        f"email.txt drifted from {golden}; if intended: PBTP_UPDATE_GOLDEN=1 pytest {__file__}")
