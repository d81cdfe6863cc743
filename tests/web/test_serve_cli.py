"""`pbtp-mailer serve` as a user runs it: a real process on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.web.conftest import serve_process

pytestmark = pytest.mark.slow


def test_serve_answers_one_click(tmp_path: Path, store, member, db_url_for_cli) -> None:
    token, list_id = member
    with serve_process(tmp_path, db_url_for_cli, keep_stderr=True) as (served, proc):
        status, _, body = served.request("GET", f"/u/{token}")
        assert status == 200 and b"Unsubscribe from news" in body
        assert not store.is_suppressed("ann@example.org", list_id)
        status, headers, _ = served.request(
            "POST", f"/u/{token}", b"List-Unsubscribe=One-Click",
            {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200 and "location" not in headers
        assert store.is_suppressed("ann@example.org", list_id)
    assert (f"Serving unsubscribe links on http://127.0.0.1:{served.port}/u/TOKEN".encode()
            in proc.stderr_text)
