"""Editor tools: a scratch project with a realistic config (no placeholders) and the
deliberately bad layouts of check's corpus."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

#: a config an organisation could send with: no example.org, no placeholder text
REAL_CONFIG = """\
default_sender = "outbox"

[newsletter]
name = "Alliance PBTP News"
from = "Alliance PBTP News <newsletter@pbtpnews.org>"
reply_to = "office@pbtpnews.org"
postal_address = "Alliance PBTP, 221 Lakeshore Drive, Suite 400, Chicago, IL 60611, USA"
web_base_url = "https://pbtpnews.org/"
archive_url = "https://pbtpnews.org/archive/"
unsubscribe_base_url = "https://pbtpnews.org/u/"
list_id = "Alliance PBTP News <news.pbtpnews.org>"
language = "en"
timezone = "America/Chicago"

[senders.outbox]
kind = "outbox"
path = ".pbtp-mailer/outbox"
"""


@pytest.fixture()
def real_project(project):
    """The scratch project with REAL_CONFIG and the corpus layouts (bare, broken)."""
    (project / "pbtp-mailer.toml").write_text(REAL_CONFIG, encoding="utf-8")
    for layout in (HERE / "layouts").iterdir():
        shutil.copytree(layout, project / "layouts" / layout.name)
    return project


@pytest.fixture()
def real_config(real_project):
    from pbtp_mailer.config import load_config

    return load_config(real_project / "pbtp-mailer.toml",
                       environ={"PBTP_MAILER_SECRET": "x" * 32})
