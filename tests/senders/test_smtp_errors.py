"""socket/ssl failures while connecting and during STARTTLS, mapped by one table.

Each case is a scripted server on 127.0.0.1 (plain sockets, no mocks): the
client's real ``ssl``/``socket`` exception goes through ``_EXCEPTIONS`` in
``smtp_client`` and comes out as one sender error naming ``host:port``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from pbtp_mailer.errors import SendPermanentError, SendTransientError
from pbtp_mailer.senders.base import SenderSpec
from pbtp_mailer.senders.smtp import SMTPSender

Script = Callable[[socket.socket], None]


@pytest.fixture
def scripted() -> Iterator[Callable[[Script], int]]:
    """``scripted(script)`` -> port of a server that runs ``script`` on one connection."""
    servers: list[socket.socket] = []
    threads: list[threading.Thread] = []
    done = threading.Event()

    def start(script: Script) -> int:
        server = socket.create_server(("127.0.0.1", 0))
        server.settimeout(10)
        servers.append(server)

        def run() -> None:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                try:
                    script(conn)
                except OSError:
                    pass
                done.wait(10)  # keep the socket open until the test is over

        threads.append(threading.Thread(target=run, daemon=True))
        threads[-1].start()
        return int(server.getsockname()[1])

    yield start
    done.set()
    for t in threads:
        t.join(timeout=10)
    for s in servers:
        s.close()


def _starttls_offered(conn: socket.socket) -> None:
    lines = conn.makefile("rb")
    conn.sendall(b"220 fake\r\n")
    lines.readline()
    conn.sendall(b"250-fake\r\n250 STARTTLS\r\n")
    lines.readline()
    conn.sendall(b"220 go ahead\r\n")


def _hang_up(conn: socket.socket) -> None:
    conn.shutdown(socket.SHUT_RDWR)


def _open(port: int, tls: str, **extra: object) -> None:
    sender = SMTPSender(SenderSpec("relay", "smtp", {
        "host": "127.0.0.1", "port": port, "tls": tls, "timeout": 5, "connect_timeout": 5,
        **extra}))
    sender.open()


@pytest.mark.parametrize(("script", "error", "text"), [
    (lambda c: c.sendall(b"220 plain text, not TLS\r\n"), SendPermanentError, "TLS failed: "),
    (_hang_up, SendTransientError, "cannot connect: "),
    (lambda c: c.recv(4096), SendTransientError, "connection timed out after 0.3 s"),
])
def test_implicit_tls_failures(scripted, script: Script, error: type[Exception],
                               text: str) -> None:
    port = scripted(script)
    with pytest.raises(error) as info:
        _open(port, "implicit", connect_timeout=0.3 if "timed out" in text else 5)
    assert str(info.value).startswith(f"127.0.0.1:{port}: {text}")


def test_hang_up_during_starttls_is_transient(scripted) -> None:
    def script(conn: socket.socket) -> None:
        _starttls_offered(conn)
        conn.recv(4096)  # the ClientHello
        _hang_up(conn)

    port = scripted(script)
    with pytest.raises(SendTransientError) as info:
        _open(port, "starttls")
    assert str(info.value) in (f"127.0.0.1:{port}: closed during STARTTLS",
                               f"127.0.0.1:{port}: connection lost: "
                               "[Errno 104] Connection reset by peer")


def test_garbage_during_starttls_is_permanent(scripted) -> None:
    def script(conn: socket.socket) -> None:
        _starttls_offered(conn)
        conn.recv(4096)
        conn.sendall(b"250 this is not a TLS record at all\r\n")

    port = scripted(script)
    with pytest.raises(SendPermanentError, match=rf"^127\.0\.0\.1:{port}: TLS failed: "):
        _open(port, "starttls")


def test_silent_starttls_handshake_times_out(scripted) -> None:
    def script(conn: socket.socket) -> None:
        _starttls_offered(conn)
        conn.recv(4096)

    port = scripted(script)
    with pytest.raises(SendTransientError) as info:
        _open(port, "starttls", connect_timeout=0.3)
    assert str(info.value) == f"127.0.0.1:{port}: TLS handshake timed out"


def test_the_connection_has_a_stream_not_a_base_class() -> None:
    from pbtp_mailer.senders.smtp_client import SMTPConnection
    from pbtp_mailer.senders.smtp_stream import SMTPStream

    conn = SMTPConnection("127.0.0.1", 25)
    assert not isinstance(conn, SMTPStream) and isinstance(conn.stream, SMTPStream)
    assert SMTPConnection.__mro__ == (SMTPConnection, object)
