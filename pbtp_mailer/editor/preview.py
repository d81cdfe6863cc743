"""``pbtp-mailer preview``: the issue as readers will see it, rebuilt on every save.

A small threaded HTTP server on 127.0.0.1 (stdlib ``http.server``: a local
tool for one editor, never exposed). A watcher thread polls the modification
times of the issue file, the layout folders and the config every 250 ms and
rebuilds on change; the page polls ``/version`` every 500 ms and reloads
itself when the version moves. A build that fails shows its problems
(``FILE:LINE:COL: field: message``) in the page, and the next good save
brings the preview back.

Routes: ``/`` the page (phone 375 px and desktop 680 px frames, a dark-mode
frame, the plain-text part, the headers, ``check``'s warnings),
``/email.html``, ``/email-dark.html`` (dark-mode rules forced on),
``/text.txt``, ``/version`` and ``/images/NAME`` (the issue's local images, which
the e-mail loads from the archive once published; the preview serves them itself).
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import html
import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pbtp_mailer.config import Config, find_config, load_config
from pbtp_mailer.errors import MailerError

__all__ = ["PreviewState", "PreviewServer", "PHONE_WIDTH", "DESKTOP_WIDTH"]

PHONE_WIDTH = 375
DESKTOP_WIDTH = 680
POLL_SECONDS = 0.25
MAX_WATCHED_FILES = 5000
_DARK_QUERY = "@media (prefers-color-scheme: dark)"


@dataclass
class Built:
    """One rebuild's output: either the pages, or the errors that stopped it."""

    version: int
    at: dt.datetime
    errors: list[str] = field(default_factory=list)
    subject: str = ""
    html: str = ""
    dark_html: str = ""
    text: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    images: dict[str, bytes] = field(default_factory=dict)  # content-hashed name -> bytes


_IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif"}


class PreviewState:
    """Builds the issue and remembers the latest result (thread-safe)."""

    def __init__(self, issue_file: str | os.PathLike[str], *, config_path: str | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.issue_file = Path(issue_file)
        self.environ = dict(os.environ if environ is None else environ)
        self.config_path = find_config(config_path, self.environ)
        self._config_arg = config_path
        self._lock = threading.Lock()
        self._version = 0
        self._image_files: list[Path] = []
        self.config: Config = load_config(config_path, self.environ)  # fail early at start
        self.built = self._build()

    @property
    def version(self) -> int:
        with self._lock:
            return self.built.version

    def watched(self) -> dict[Path, tuple[int, int]]:
        """(mtime_ns, size) of every file whose change means rebuilding."""
        from pbtp_mailer.compose.layouts import layout_dirs

        paths = [self.issue_file, *self._image_files]
        if self.config_path is not None:
            paths.append(self.config_path)
        for folder in layout_dirs(self.config.base_dir):
            paths.extend(p for p in sorted(folder.rglob("*"))[:MAX_WATCHED_FILES] if p.is_file())
        out = {}
        for p in paths:
            try:
                st = p.stat()
            except OSError:
                out[p] = (-1, -1)  # missing now; appearing again is a change
            else:
                out[p] = (st.st_mtime_ns, st.st_size)
        return out

    def rebuild(self) -> Built:
        built = self._build()
        with self._lock:
            self.built = built
        return built

    def _build(self) -> Built:
        self._version += 1
        built = Built(version=self._version, at=dt.datetime.now(dt.UTC))
        try:
            self.config = load_config(self._config_arg, self.environ)
            self._render(built)
        except MailerError as exc:
            built.errors = str(exc).splitlines()
            if exc.hint:
                built.errors.append(f"Hint: {exc.hint}")
        except Exception as exc:  # noqa: BLE001 - a preview must survive any bad save
            built.errors = [f"{self.issue_file}: unexpected {type(exc).__name__}: {exc}"]
        return built

    def _render(self, built: Built) -> None:
        from pbtp_mailer.compose import compose
        from pbtp_mailer.compose.build import fill_slots, sample_personal
        from pbtp_mailer.compose.message import MessageTemplate
        from pbtp_mailer.editor.check import check_issue
        from pbtp_mailer.issue.model import load_issue

        issue = load_issue(self.issue_file)
        rendition = compose(issue, self.config, web=False)
        personal = sample_personal(self.config)
        template = MessageTemplate(rendition, self.config.newsletter)
        values = template.values(personal)
        built.subject = rendition.subject
        built.html = fill_slots(rendition.html, values, escape=True)
        for asset in rendition.assets:  # not published yet: served by the preview itself
            built.html = built.html.replace(asset.url, f"/images/{asset.name}")
            built.images[asset.name] = asset.data
        self._image_files = [a.source for a in rendition.assets]
        built.dark_html = built.html.replace(_DARK_QUERY, "@media all")
        built.text = fill_slots(rendition.text, values, escape=False)
        raw = template.render(personal)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        built.headers = [(k, str(v)) for k, v in msg.items()]
        report = check_issue(self.issue_file, self.config)
        built.warnings = [str(f) for f in report.findings]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "pbtp-mailer-preview"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass  # one line per request would drown the editor's terminal

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib name
        self._answer(head=True)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._answer(head=False)

    def _answer(self, *, head: bool) -> None:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        if host not in ("127.0.0.1", "localhost"):  # DNS rebinding: only our own names
            return self._send(403, "text/plain", b"forbidden host\n", head)
        state = self.server.state
        with state._lock:
            built = state.built
        path = self.path.split("?", 1)[0]
        if path == "/":
            return self._send(200, "text/html", page(built, state.issue_file).encode(), head)
        if path == "/version":
            body = json.dumps({"version": built.version, "ok": not built.errors}).encode()
            return self._send(200, "application/json", body, head)
        if path in ("/email.html", "/email-dark.html", "/text.txt"):
            if built.errors:
                return self._send(503, "text/plain", b"the issue does not build\n", head)
            if path == "/text.txt":
                return self._send(200, "text/plain", built.text.encode(), head)
            page_html = built.html if path == "/email.html" else built.dark_html
            return self._send(200, "text/html", page_html.encode(), head)
        if path.startswith("/images/") and path[8:] in built.images:
            kind = _IMAGE_TYPES.get(path.rsplit(".", 1)[-1], "application/octet-stream")
            return self._send(200, kind, built.images[path[8:]], head)
        return self._send(404, "text/plain", b"not found\n", head)

    def _send(self, code: int, ctype: str, body: bytes, head: bool) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype if ctype.startswith("image/")
                         else f"{ctype}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if not head:
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: PreviewState


class PreviewServer:
    """The preview server plus its watcher; ``start()`` runs both in threads (tests),
    ``serve_forever()`` blocks (the CLI). Always ``close()`` it."""

    def __init__(self, issue_file: str | os.PathLike[str], *, port: int = 8000,
                 config_path: str | None = None, environ: Mapping[str, str] | None = None,
                 poll: float = POLL_SECONDS) -> None:
        self.state = PreviewState(issue_file, config_path=config_path, environ=environ)
        try:
            self.httpd = _Server(("127.0.0.1", port), _Handler)
        except OSError as exc:
            raise MailerError(f"127.0.0.1:{port}: cannot listen ({exc.strerror})",
                              hint="choose another port with --port") from None
        self.httpd.state = self.state
        self.poll = poll
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="preview-watcher",
                                         daemon=True)
        self._serving: threading.Thread | None = None
        self._watcher.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def _watch(self) -> None:
        last = self.state.watched()
        while not self._stop.wait(self.poll):
            try:
                now = self.state.watched()
            except OSError:  # pragma: no cover - a folder vanished mid-scan; next poll
                continue
            if now != last:
                last = now
                time.sleep(0.05)  # let an editor finish writing (write, then rename)
                self.state.rebuild()
                last = self.state.watched()

    def start(self) -> PreviewServer:
        self._serving = threading.Thread(target=self.httpd.serve_forever,
                                         kwargs={"poll_interval": 0.1}, name="preview-http",
                                         daemon=True)
        self._serving.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.25)

    def close(self) -> None:
        self._stop.set()
        if self._serving is not None:
            self.httpd.shutdown()
            self._serving.join(timeout=5)
        self.httpd.server_close()
        self._watcher.join(timeout=5)

    def __enter__(self) -> PreviewServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_PAGE_CSS = """
body { margin: 0; font: 15px/1.5 system-ui, sans-serif; background: #e5e7eb; color: #111827; }
header { background: #1f2937; color: #f9fafb; padding: 10px 16px; }
header h1 { font-size: 17px; margin: 0; }
header p { margin: 2px 0 0 0; font-size: 13px; color: #d1d5db; }
main { padding: 16px; }
.row { display: flex; flex-wrap: wrap; gap: 20px; align-items: flex-start; }
figure { margin: 0; }
figcaption { font-size: 13px; color: #374151; margin: 0 0 4px 0; }
iframe { border: 1px solid #9ca3af; background: #fff; height: 900px; display: block; }
#errors { background: #fef2f2; border: 2px solid #b91c1c; padding: 12px 16px; }
#errors h2 { color: #991b1b; margin: 0 0 8px 0; font-size: 18px; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; }
.text { background: #fff; border: 1px solid #9ca3af; padding: 12px; max-width: 80ch; }
table { border-collapse: collapse; background: #fff; font-size: 13px; }
td, th { border: 1px solid #d1d5db; padding: 3px 8px; text-align: left; vertical-align: top; }
#warnings { background: #fffbeb; border: 1px solid #b45309; padding: 8px 16px 8px 32px; }
section { margin: 0 0 20px 0; }
h2 { font-size: 16px; margin: 0 0 6px 0; }
"""

_PAGE_JS = """
const version = %d;
for (const f of document.querySelectorAll('iframe')) {
  f.addEventListener('load', () => {
    try { f.style.height = (f.contentDocument.documentElement.scrollHeight + 4) + 'px'; }
    catch (e) {}
  });
}
let busy = false;
setInterval(async () => {
  if (busy) return;
  busy = true;
  try {
    const r = await fetch('/version', {cache: 'no-store'});
    const j = await r.json();
    if (j.version !== version) location.reload();
  } catch (e) { /* server stopped: keep the last page */ }
  busy = false;
}, 500);
"""


def page(built: Built, issue_file: Path) -> str:
    """The preview page for one build (server-rendered; the script only polls)."""
    e = html.escape
    v = built.version
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Preview: {e(built.subject or str(issue_file))}</title>",
        f"<style>{_PAGE_CSS}</style></head><body>",
        f"<header><h1>Preview of {e(str(issue_file))}</h1>",
        f"<p id='status' data-version='{v}'>Build {v} at "
        f"{built.at.astimezone().strftime('%H:%M:%S')}: "
        f"{'failed' if built.errors else 'ok'}. Save the file to rebuild.</p></header><main>",
    ]
    if built.errors:
        parts.append("<section id='errors'><h2>The issue cannot be built</h2><pre>"
                     + e("\n".join(built.errors)) + "</pre></section>")
    else:
        if built.warnings:
            parts.append("<section><h2>Warnings from pbtp-mailer check</h2><ul id='warnings'>"
                         + "".join(f"<li>{e(w)}</li>" for w in built.warnings)
                         + "</ul></section>")
        parts.append(
            "<section class='row'>"
            f"<figure><figcaption>Phone, {PHONE_WIDTH} px</figcaption>"
            f"<iframe id='phone' title='Phone view' src='/email.html?v={v}' "
            f"style='width:{PHONE_WIDTH}px'></iframe></figure>"
            f"<figure><figcaption>Desktop, {DESKTOP_WIDTH} px</figcaption>"
            f"<iframe id='desktop' title='Desktop view' src='/email.html?v={v}' "
            f"style='width:{DESKTOP_WIDTH}px'></iframe></figure></section>"
            "<section class='row'>"
            f"<figure><figcaption>Dark mode (Apple Mail, Outlook.com), {DESKTOP_WIDTH} px"
            "</figcaption>"
            f"<iframe id='dark' title='Dark mode view' src='/email-dark.html?v={v}' "
            f"style='width:{DESKTOP_WIDTH}px'></iframe></figure>"
            "<figure><figcaption>Plain-text part</figcaption>"
            f"<pre id='text' class='text'>{e(built.text)}</pre></figure></section>"
            "<section><h2>Headers (sample recipient)</h2><table id='headers'>"
            + "".join(f"<tr><th>{e(k)}</th><td>{e(val)}</td></tr>" for k, val in built.headers)
            + "</table></section>")
    parts.append(f"</main><script>{_PAGE_JS % v}</script></body></html>")
    return "".join(parts)
