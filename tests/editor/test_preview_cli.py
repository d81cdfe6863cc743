"""pbtp-mailer preview as a real process: prints its URL, serves, stops on Ctrl+C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request

from click.testing import CliRunner

from pbtp_mailer.cli import main


def test_preview_process_serves_and_stops_on_ctrl_c(project):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pbtp_mailer", "preview",
                             "issues/2024-03.yaml", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stdout.readline()
        assert first.startswith("Previewing issues/2024-03.yaml at http://127.0.0.1:")
        assert first.endswith("/ (Ctrl+C to stop)\n")
        url = first.split(" at ")[1].split(" ")[0]
        with urllib.request.urlopen(url + "version", timeout=10) as r:
            assert r.read() == b'{"version": 1, "ok": true}'
        with urllib.request.urlopen(url + "email.html", timeout=10) as r:
            html = r.read().decode()
        assert "Spotlight on New Alliance Program" in html and "@@PBTP" not in html
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert out == "Stopped.\n" and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_preview_port_in_use_is_one_error_line(project):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = CliRunner().invoke(main, ["preview", "issues/2024-03.yaml", "--port", str(port)])
    assert result.exit_code == 1
    assert result.stderr == (f"Error: 127.0.0.1:{port}: cannot listen (Address already in use)\n"
                             "Hint: choose another port with --port\n")


def test_preview_of_a_broken_issue_starts_and_shows_the_error(project):
    from pbtp_mailer.editor.preview import PreviewServer, page

    (project / "issues" / "bad.yaml").write_text("id: 2024-04\n", encoding="utf-8")
    with PreviewServer("issues/bad.yaml", port=0) as server:
        built = server.state.built
        assert built.errors[0] == "issues/bad.yaml:1:1: masthead: field required"
        html = page(built, server.state.issue_file)
        assert "The issue cannot be built" in html and "issues/bad.yaml:1:1: masthead" in html


def test_preview_serves_the_local_images_itself(project):
    import urllib.request

    from PIL import Image

    from pbtp_mailer.editor.preview import PreviewServer
    from tests.compose.content_issue import write_issue

    path = write_issue(project / "issues")
    with PreviewServer(path, port=0).start() as server:
        html = server.state.built.html
        names = sorted(server.state.built.images)
        assert [n.split(".")[0] for n in names] == ["enrolment", "figure-1", "rule"]
        for name in names:
            assert f'src="/images/{name}"' in html
            with urllib.request.urlopen(f"{server.url}images/{name}", timeout=10) as resp:
                assert resp.headers["Content-Type"] == "image/png"
                assert resp.read() == server.state.built.images[name]
        assert path.parent / "images" / "rule.png" in server.state.watched()
        Image.new("RGB", (592, 8), (0, 0, 0)).save(path.parent / "images" / "rule.png")
        server.state.rebuild()
        assert sorted(server.state.built.images) != names  # a new file, a new hashed name
