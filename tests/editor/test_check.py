"""pbtp-mailer check: the corpus of bad issues (one per warning kind, exact output),
exit codes, --strict with the shipped and a realistic config, --json, the schedule
and --online."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from pbtp_mailer.cli import main

HERE = Path(__file__).resolve().parent
CASES = sorted((HERE / "issues").glob("*.yaml"))


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_corpus_case_gives_exact_output(case, real_project):
    shutil.copy(case, real_project / "issues" / case.name)
    result = run("check", f"issues/{case.name}")
    expected = case.with_suffix(".expected").read_text(encoding="utf-8")
    got = result.output.replace(str(real_project), "{root}") + f"exit {result.exit_code}\n"
    assert got == expected
    assert "Traceback" not in result.output


def test_corpus_covers_every_code_but_online_and_config():
    from pbtp_mailer.editor.check import CODES

    seen = set()
    for case in CASES:
        text = case.with_suffix(".expected").read_text(encoding="utf-8")
        seen.update(code for code in CODES if f"[{code}]" in text)
    # link-broken needs --online, schedule-* depend on the clock, config-placeholder on the
    # config, html-size on a 90 KB file, img-* on image files made by the test: each has its
    # own test below
    assert set(CODES) - seen == {"link-broken", "schedule-past", "schedule",
                                 "config-placeholder", "html-size", "img-bytes", "img-wide",
                                 "img-unpublished"}
    assert len(CASES) >= 15


def test_march_issue_fails_strict_with_the_shipped_config(project):
    result = run("check", "--strict", "issues/2024-03.yaml")
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert lines[0] == ("pbtp-mailer.toml:12: error: [newsletter] from: uses the placeholder "
                        "host example.org; set the real value before sending "
                        "[config-placeholder]")
    assert lines[2] == ("pbtp-mailer.toml:14: error: [newsletter] postal_address: contains "
                        "'placeholder'; set the real value before sending [config-placeholder]")
    assert len(lines) == 10 and all("[config-placeholder]" in ln for ln in lines[:-1])
    assert lines[-1] == ("issues/2024-03.yaml: 9 errors, 0 warnings "
                         "(--strict: warnings count as errors)")


def test_march_issue_warns_without_strict_with_the_shipped_config(project):
    result = run("check", "issues/2024-03.yaml")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "issues/2024-03.yaml: 0 errors, 9 warnings"
    assert "pbtp-mailer.toml:12: warning: [newsletter] from:" in result.output


def test_march_issue_passes_strict_with_a_real_config(real_project):
    result = run("check", "--strict", "issues/2024-03.yaml")
    assert result.output == "issues/2024-03.yaml: no problems found\n"
    assert result.exit_code == 0


def test_json_output(real_project):
    shutil.copy(HERE / "issues" / "04-link-http.yaml", real_project / "issues")
    result = run("check", "--json", "issues/04-link-http.yaml")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data == {
        "file": "issues/04-link-http.yaml", "strict": False, "exit_code": 1,
        "errors": 0, "warnings": 1,
        "findings": [{"level": "warning", "place": "issues/04-link-http.yaml:12",
                      "code": "link-http",
                      "message": "link 'the trial page': http://www.cancer.gov/trial is http:, "
                                 "use https:"}],
    }
    strict = json.loads(run("check", "--json", "--strict", "issues/04-link-http.yaml").output)
    assert strict["exit_code"] == 2 and strict["findings"][0]["level"] == "error"


def test_missing_file_is_an_error_finding(real_project):
    result = run("check", "issues/nope.yaml")
    assert result.output == ("issues/nope.yaml:1: error: file not found [invalid]\n"
                             "issues/nope.yaml: 1 error, 0 warnings\n")
    assert result.exit_code == 2


def test_html_over_budget(real_project, real_config):
    from pbtp_mailer.editor.check import check_issue

    para = "Procedure-based therapy trial results for local disease, in detail. " * 30
    body = "\n\n".join([para] * 50)
    text = (HERE / "issues" / "01-clean.yaml").read_text(encoding="utf-8")
    text = text.replace("      Hello world, with [a link](https://www.cancer.gov/research).",
                        "      " + body.replace("\n\n", "\n\n      "))
    path = real_project / "issues" / "big.yaml"
    path.write_text(text, encoding="utf-8")
    report = check_issue(path, real_config)
    assert [f.code for f in report.findings] == ["html-size"]
    assert report.findings[0].place == f"{path}:1"
    assert "Gmail clips messages near 102 KB (budget 90,000)" in report.findings[0].message


@pytest.mark.parametrize("own_rule", [False, True], ids=["schedule.py", "fallback"])
def test_schedule_in_the_past(real_project, real_config, monkeypatch, own_rule):
    import sys

    from pbtp_mailer.editor.check import check_issue

    if own_rule:  # as before pbtp_mailer/schedule.py existed
        monkeypatch.setitem(sys.modules, "pbtp_mailer.schedule.state", None)
    path = real_project / "issues" / "sched.yaml"
    shutil.copy(HERE / "schedule-past.yaml", path)
    before = dt.datetime(2020, 1, 7, 14, 0, tzinfo=dt.UTC)  # 08:00 in Chicago
    assert check_issue(path, real_config, now=before).findings == []
    after = dt.datetime(2020, 1, 7, 16, 0, tzinfo=dt.UTC)
    findings = check_issue(path, real_config, now=after).findings
    assert [(f.level, f.place, f.code) for f in findings] == [
        ("warning", f"{path}:11", "schedule-past")]
    assert findings[0].message.startswith("schedule.send_at: 2020-01-07")


def test_config_placeholders_name_the_config_line(config):
    from pbtp_mailer.editor.check import config_placeholders

    found = {f.message.split(":")[0]: f.place.rsplit(":", 1)[1]
             for f in config_placeholders(config)}
    assert found["[newsletter] from"] == "12"
    assert found["[newsletter] list_id"] == "19"
    assert "[newsletter] name" not in found


class _Links(BaseHTTPRequestHandler):
    def do_HEAD(self):  # noqa: N802
        self.send_response(200 if self.path == "/ok" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_online_link_check_against_a_local_server(real_project, real_config):
    from pbtp_mailer.editor.check import check_issue

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Links)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        text = (HERE / "issues" / "01-clean.yaml").read_text(encoding="utf-8").replace(
            "[a link](https://www.cancer.gov/research)",
            f"[fine]({base}/ok) and [gone]({base}/gone)")
        path = real_project / "issues" / "online.yaml"
        path.write_text(text, encoding="utf-8")
        offline = check_issue(path, real_config)
        assert {f.code for f in offline.findings} == {"link-http"}
        from pbtp_mailer.editor.check import fetch_urls

        def local_only(urls):  # the real checker, kept off the internet
            return fetch_urls([u for u in urls if u.startswith(base)], timeout=5)

        online = check_issue(path, real_config, online=True, fetch=local_only)
        broken = [f for f in online.findings if f.code == "link-broken"]
        assert [(f.place, f.message) for f in broken] == [
            (f"{path}:10", f"{base}/gone: HTTP 404")]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_online_uses_injected_fetch(real_project, real_config):
    from pbtp_mailer.editor.check import check_issue

    shutil.copy(HERE / "issues" / "01-clean.yaml", real_project / "issues")
    seen = []

    def fetch(urls):
        seen.extend(urls)
        return {u: "unreachable (ConnectError)" for u in urls}

    report = check_issue(real_project / "issues" / "01-clean.yaml", real_config,
                         online=True, fetch=fetch)
    assert "https://www.cancer.gov/research" in seen
    assert "https://doi.org/10.1000/xyz123" in seen
    assert not any("@@PBTP" in u for u in seen)
    assert {f.code for f in report.findings} == {"link-broken"}


def test_local_images_weight_width_and_publication(real_project, real_config):
    import os

    from PIL import Image

    from pbtp_mailer.editor.check import check_issue
    from tests.compose.content_issue import write_issue

    path = write_issue(real_project / "issues")
    big = real_project / "issues" / "images" / "figure-1.png"
    Image.frombytes("RGB", (1600, 900), os.urandom(1600 * 900 * 3)).save(big)  # ~4 MB noise
    report = check_issue(path, real_config)
    mine = [str(f).replace(str(real_project) + "/", "") for f in report.findings
            if f.code.startswith("img-")]
    assert mine == [
        "issues/2024-05.yaml:8: warning: 3 local images load from "
        "https://pbtpnews.org/archive/2024-05/, which exists only once this issue's archive "
        "is published (pbtp-mailer archive --all, then upload the site folder) — do that "
        "before sending [img-unpublished]",
        f"issues/2024-05.yaml:18: warning: image figure-1.png: {big.stat().st_size // 1024:,} KB; "
        "keep e-mail images under 200 KB (compress or resize it) [img-bytes]",
        "issues/2024-05.yaml:18: warning: image figure-1.png: 1,600 px wide; 1,200 px is "
        "plenty for the column even on retina screens (resize it) [img-wide]",
    ]

    def fetch(urls):
        return {u: None if "figure-1" in u else "HTTP 404" for u in urls}

    online = check_issue(path, real_config, online=True, fetch=fetch)
    unpublished = [f.message for f in online.findings if f.code == "img-unpublished"]
    assert len(unpublished) == 1 and unpublished[0].startswith("2 local images load from")


def test_image_alt_and_http_point_at_the_issue_line(real_project, real_config):
    from pbtp_mailer.editor.check import check_issue
    from tests.compose.content_issue import ISSUE, write_issue

    text = (ISSUE.replace("![Enrolment by site, January to April]", "![]")
            .replace("https://cdn.example.org/portraits/muller.jpg",
                     "http://cdn.pbtpnews.org/portraits/muller.jpg"))
    path = write_issue(real_project / "issues", text)
    found = {(f.code, f.place.rsplit(":", 1)[1]) for f in check_issue(path, real_config).findings
             if f.code in ("img-alt", "img-http")}
    assert found == {("img-alt", "31"), ("img-http", "37")}  # not the decorative hero (line 8)
