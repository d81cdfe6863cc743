"""The limits ``serve`` gives waitress: a form endpoint, not a file upload service.

waitress's defaults suit an application server behind a careful proxy: a
1 GiB request body, 256 kB of headers, 100 connections, idle connections
kept for 120 s. Facing the internet directly, 100 half-open connections
(a slow client sending a request a byte at a time, or never finishing it)
fill the connection limit and real requests wait for minutes, and a huge
POST is read before it is refused. Our pages take a one-line form post, so:

- ``max_request_body_size`` 64 kB: a larger ``Content-Length`` gets 413
  before any body is read;
- ``max_request_header_size`` 16 kB of request line and headers;
- ``channel_timeout`` 10 s: a connection silent that long is closed
  (checked every ``cleanup_interval`` 2 s);
- ``connection_limit`` 1,000, capped below the process's open-file limit:
  headroom for a flood of slow clients while requests still come in
  (waitress buffers a request until complete before a thread sees it);
- ``asyncore_use_poll``: ``select()`` cannot watch more than 1,024 sockets.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SERVER_LIMITS", "server_options"]

SERVER_LIMITS: dict[str, Any] = {
    "max_request_body_size": 64 * 1024,
    "max_request_header_size": 16 * 1024,
    "channel_timeout": 10,
    "cleanup_interval": 2,
    "connection_limit": 1000,
    "asyncore_use_poll": True,
}


def _open_file_limit() -> int | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def server_options(host: str, port: int, threads: int,
                   trusted_proxy: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``waitress.serve``/``create_server``."""
    options: dict[str, Any] = {"host": host, "port": port, "threads": threads,
                               "ident": "pbtp-mailer", **SERVER_LIMITS}
    files = _open_file_limit()
    if files is not None:  # keep descriptors for the database, logs and threads
        options["connection_limit"] = max(50, min(options["connection_limit"], files - 64))
    if trusted_proxy:
        options.update(trusted_proxy=trusted_proxy, trusted_proxy_count=1,
                       trusted_proxy_headers="x-forwarded-for x-forwarded-proto "
                                             "x-forwarded-host x-forwarded-port",
                       clear_untrusted_proxy_headers=True)
    return options
