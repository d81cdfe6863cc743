"""SpamAssassin (Debian `spamassassin`, local tests only) on the built message.eml."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

SA = shutil.which("spamassassin")
FORBIDDEN = re.compile(r"^(MISSING_|INVALID_|MIME_QP_LONG_LINE|MPART_ALT_DIFF|MIME_HTML_ONLY|"
                       r"HTML_IMAGE_ONLY_|HTML_FONT_LOW_CONTRAST|SUBJ_ALL_CAPS)")


pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(SA is None, reason="Debian package spamassassin is not installed "
                                                    "(scripts/test.sh installs it)")]


def spamassassin(eml: bytes, home) -> tuple[float, list[str], str]:
    """Score, rules fired and the report of ``spamassassin -L -t`` (local tests only)."""
    assert SA is not None
    proc = subprocess.run([SA, "-L", "-t"], input=eml, capture_output=True, timeout=180,
                          env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    report = proc.stdout.decode("utf-8", "replace")
    m = re.search(r"Content analysis details:\s+\((-?[\d.]+) points", report)
    assert m, report[-2000:]
    rules = re.findall(r"^\s*-?[\d.]+\s+([A-Z0-9_]+)\s", report.split("Content analysis details")[1],
                       flags=re.M)
    return float(m.group(1)), rules, report


def test_spamassassin_score_and_rules(built, tmp_path):
    score, rules, report = spamassassin((built.folder / "message.eml").read_bytes(), tmp_path)
    fired = [r for r in rules if FORBIDDEN.match(r)]
    assert fired == [], report
    assert score < 1.0, report
    # stretch goal reached: the preheader hides without low-contrast text
    assert "HTML_FONT_LOW_CONTRAST" not in rules


def test_images_urls_and_briefs_do_not_change_the_score(built, tmp_path, config):
    """The image issue (tests/compose/content_issue.py) scores as the March issue does."""
    from pbtp_mailer.compose.build import build_issue
    from tests.compose.content_issue import write_issue

    march, march_rules, _ = spamassassin((built.folder / "message.eml").read_bytes(), tmp_path)
    other = build_issue(write_issue(tmp_path / "issue"), config, tmp_path / "build")
    score, rules, report = spamassassin((other.folder / "message.eml").read_bytes(), tmp_path)
    assert [r for r in rules if FORBIDDEN.match(r)] == [], report
    assert score <= march, report
