"""Finding 5: `pbtp-mailer serve` holds under abuse (a real process on 127.0.0.1).

A flood of slow clients must not starve real requests, and a huge POST is
refused from its Content-Length before any body is read. No timing
assertions: a request must complete before a generous socket timeout while
the flood holds; the latency is printed.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web.conftest import Served, serve_process

pytestmark = pytest.mark.slow

FLOOD = 150


@pytest.fixture
def serving(tmp_path: Path, store, member, db_url_for_cli) -> Iterator[tuple[Served, str]]:
    token, _ = member
    with serve_process(tmp_path, db_url_for_cli) as (served, _proc):
        yield served, token


def _raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send ``data`` on a fresh connection; the first bytes answered (b'' if none)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        try:
            return s.recv(4096)
        except TimeoutError:
            return b""


def test_finding5_slow_client_flood_does_not_block_real_requests(serving) -> None:
    served, token = serving
    flood: list[socket.socket] = []
    try:
        for _ in range(FLOOD):  # half-open: a request line and one header, never finished
            s = socket.create_connection(("127.0.0.1", served.port), timeout=5)
            s.sendall(b"POST /u/x HTTP/1.1\r\nHost: news.example.org\r\n")
            flood.append(s)
        time.sleep(0.5)  # let the server accept them all
        started = time.monotonic()
        answer = _raw(served.port, f"GET /u/{token} HTTP/1.1\r\nHost: news.example.org\r\n"
                                   "Connection: close\r\n\r\n".encode())
        latency = time.monotonic() - started
        print(f"\nreal request during a flood of {FLOOD} half-open connections: "
              f"{latency * 1000:.0f} ms")
        assert answer.startswith(b"HTTP/1.1 200"), answer[:80]
    finally:
        for s in flood:
            s.close()


def test_finding5_huge_post_refused_before_reading_body(serving) -> None:
    served, token = serving
    # 200 MB announced, nothing sent: the 413 must come without waiting for the body
    answer = _raw(served.port, f"POST /u/{token} HTTP/1.1\r\nHost: news.example.org\r\n"
                               "Content-Type: application/x-www-form-urlencoded\r\n"
                               "Content-Length: 200000000\r\n\r\n".encode())
    assert answer.split(b"\r\n")[0].split(b" ")[1] == b"413", answer[:80]


def test_finding5_oversized_headers_refused(serving) -> None:
    served, token = serving
    big = "X-Filler: " + "a" * 40_000 + "\r\n"
    answer = _raw(served.port, f"GET /u/{token} HTTP/1.1\r\nHost: news.example.org\r\n{big}"
                               "\r\n".encode())
    assert answer.split(b"\r\n")[0].split(b" ")[1] == b"431", answer[:80]


def test_server_limits_are_documented() -> None:
    from pbtp_mailer.web.server import SERVER_LIMITS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "unsubscribe.md").read_text("utf-8")
    for name in SERVER_LIMITS:
        assert f"`{name}`" in doc, name
