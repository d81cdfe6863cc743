"""A non-blocking SMTP command/reply stream over TCP, with TLS.

``SMTPStream`` owns one socket: it connects it, wraps it in TLS, writes
commands and bodies, and reads complete replies. Its methods are generators
for ``smtp_engine``: they yield ``READ`` or ``WRITE`` when the socket would
block, and the engine throws ``Expired`` into them when the deadline of the
session that drives them (``SMTPConnection``, which *has* a stream) passes.
A failure while writing or reading is raised as ``ConnectionLost`` naming
``host:port``, after the socket is closed; ``open`` and ``handshake`` let
``socket``/``ssl`` errors through for the session to map in one table.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl

from pbtp_mailer.senders._options import mask
from pbtp_mailer.senders.smtp_engine import READ, WRITE, Job
from pbtp_mailer.senders.smtp_wire import ConnectionLost, Reply, ReplyReader

__all__ = ["SMTPStream"]

_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError)
_IN_PROGRESS = (errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK)


class SMTPStream:
    """One socket to an SMTP server (see the module docstring)."""

    def __init__(self, host: str, port: int, *, masked: list[str | None] | None = None) -> None:
        self.host = host
        self.port = port
        self.place = f"{host}:{port}"
        self.sock: socket.socket | None = None
        self._reader = ReplyReader()
        #: secrets to mask in every reply (a server may echo what we sent)
        self._masked = list(masked or [])

    @property
    def connected(self) -> bool:
        return self.sock is not None

    def abort(self) -> None:
        """Close the socket at once (no QUIT); harmless when already closed."""
        sock, self.sock = self.sock, None
        self._reader.clear()
        if sock is not None:
            sock.close()

    def discard_replies(self) -> None:
        """Forget replies read but not taken (after STARTTLS nothing plain may be trusted)."""
        self._reader.clear()

    @property
    def has_replies(self) -> bool:
        """Whether a reply was read and not taken yet (a server may answer before the end)."""
        return bool(self._reader.replies)

    def _lost(self, why: str, *, keep_replies: bool = False) -> ConnectionLost:
        """Close the socket; ``keep_replies``: those already read stay to be taken."""
        kept = list(self._reader.replies) if keep_replies else []
        self.abort()
        self._reader.replies.extend(kept)
        return ConnectionLost(f"{self.place}: {why}", after_data=False)

    def _drain(self) -> None:
        """Read what a server said before it hung up on our write (it refused the body)."""
        sock = self.sock
        for _ in range(16):
            try:
                data = sock.recv(65536) if sock is not None else b""
            except OSError:  # nothing more (would block, reset, TLS alert)
                return
            if not data or self._reader.feed(data):
                return

    def open(self) -> Job[None]:
        """A connected non-blocking TCP socket to the first address that answers."""
        error: OSError | None = None
        for family, kind, proto, _, address in socket.getaddrinfo(
                self.host, self.port, type=socket.SOCK_STREAM)[:16]:
            sock = self.sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            code = sock.connect_ex(address)
            if code in _IN_PROGRESS:
                yield WRITE
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code == 0:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return
            self.abort()
            error = OSError(code, os.strerror(code))
        raise error or OSError(f"no address for {self.host}")

    def handshake(self, context: ssl.SSLContext | None) -> Job[None]:
        """TLS on the connected socket, certificate and host name verified."""
        assert self.sock is not None
        context = context or ssl.create_default_context()
        sock = self.sock = context.wrap_socket(self.sock, server_hostname=self.host,
                                               do_handshake_on_connect=False)
        while True:  # bounded by the deadline
            try:
                sock.do_handshake()
                return
            except ssl.SSLWantReadError:
                want = READ
            except ssl.SSLWantWriteError:
                want = WRITE
            yield want

    def write(self, *chunks: bytes) -> Job[None]:
        """Write ``chunks`` in order; plain sockets gather them in one system call."""
        views = [memoryview(c) for c in chunks if c]
        while views:  # each turn sends bytes or waits, bounded by the deadline
            sock = self.sock
            if sock is None:
                raise ConnectionLost(f"{self.place}: not connected", after_data=False)
            want = 0
            try:
                if len(views) > 1 and not isinstance(sock, ssl.SSLSocket):
                    sent = sock.sendmsg(views)
                else:
                    sent = sock.send(views[0])
            except ssl.SSLWantReadError:
                want = READ
            except (BlockingIOError, ssl.SSLWantWriteError):
                want = WRITE
            except OSError as exc:
                self._drain()
                raise self._lost(f"connection lost: {exc}", keep_replies=True) from None
            if want:
                yield want
                continue
            while sent:
                first = views[0]
                if sent < len(first):
                    views[0] = first[sent:]
                    break
                sent -= len(first)
                del views[0]

    def read_replies(self, n: int) -> Job[list[Reply]]:
        replies = self._reader.replies
        wait = True
        while len(replies) < n:  # each turn reads bytes or waits, bounded by the deadline
            sock = self.sock
            if sock is None:
                raise ConnectionLost(f"{self.place}: not connected", after_data=False)
            # an SSL socket may hold decrypted bytes that select() cannot see
            if wait and not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                yield READ
            wait = True
            try:
                data = sock.recv(65536)
            except ssl.SSLWantWriteError:
                data = None
            except _WOULD_BLOCK:
                continue
            except OSError as exc:
                raise self._lost(f"connection lost: {exc}") from None
            if data is None:  # TLS wants to write first (renegotiation, key update)
                yield WRITE
                wait = False
                continue
            if not data:
                raise self._lost("connection closed by the server")
            problem = self._reader.feed(data)
            if problem:
                raise self._lost(problem)
        taken = [replies.popleft() for _ in range(n)]
        if self._masked:
            taken = [Reply(r.code, mask(r.text, self._masked)) for r in taken]
        return taken

    def read_reply(self) -> Job[Reply]:
        return (yield from self.read_replies(1))[0]

    def command(self, line: str) -> Job[Reply]:
        yield from self.write(line.encode("utf-8") + b"\r\n")
        return (yield from self.read_replies(1))[0]
