"""SpamAssassin (Debian `spamassassin`, local tests only) on the built message.eml."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

SA = shutil.which("spamassassin")
FORBIDDEN = re.compile(r"^(MISSING_|INVALID_|MIME_QP_LONG_LINE|MPART_ALT_DIFF|MIME_HTML_ONLY|"
                       r"HTML_IMAGE_ONLY_|HTML_FONT_LOW_CONTRAST|SUBJ_ALL_CAPS)")


@pytest.mark.slow
@pytest.mark.skipif(SA is None, reason="Debian package spamassassin is not installed "
                                       "(scripts/test.sh installs it)")
def test_spamassassin_score_and_rules(built, tmp_path):
    eml = (built.folder / "message.eml").read_bytes()
    proc = subprocess.run([SA, "-L", "-t"], input=eml, capture_output=True, timeout=180,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    report = proc.stdout.decode("utf-8", "replace")
    m = re.search(r"Content analysis details:\s+\((-?[\d.]+) points", report)
    assert m, report[-2000:]
    score = float(m.group(1))
    rules = re.findall(r"^\s*-?[\d.]+\s+([A-Z0-9_]+)\s", report.split("Content analysis details")[1],
                       flags=re.M)
    fired = [r for r in rules if FORBIDDEN.match(r)]
    assert fired == [], report
    assert score < 1.0, report
    # stretch goal reached: the preheader hides without low-contrast text
    assert "HTML_FONT_LOW_CONTRAST" not in rules
