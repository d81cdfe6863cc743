"""A WSGI app served by a real waitress on a free 127.0.0.1 port, in a thread of the test.

    with serving(app) as port:
        ...   # http://127.0.0.1:{port}/

The loop runs in small steps so the server stops cleanly when the block ends
(the thread is joined; a server that does not stop fails the test).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["serving"]


@contextmanager
def serving(app: Any, *, port: int = 0, threads: int = 2, **options: Any) -> Iterator[int]:
    from waitress import wasyncore
    from waitress.server import create_server

    server = create_server(app, host="127.0.0.1", port=port, threads=threads, **options)
    stop = threading.Event()

    def run() -> None:
        try:
            while not stop.is_set():
                wasyncore.loop(timeout=0.05, map=server._map, count=1)
        finally:
            server.task_dispatcher.shutdown()
            wasyncore.close_all(server._map)

    thread = threading.Thread(target=run, name="waitress-test", daemon=True)
    thread.start()
    try:
        yield int(server.effective_port)
    finally:
        stop.set()
        thread.join(10)
        assert not thread.is_alive(), "waitress did not stop"
