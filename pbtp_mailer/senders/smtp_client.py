"""One SMTP session on a non-blocking socket, as jobs for ``smtp_engine``.

Why not smtplib or aiosmtplib: both pass over every message body in Python
(smtplib's dot-stuffing regex, aiosmtplib's line-ending normalisation), and
asyncio's machinery costs more than the protocol at loopback speed. Here a
transaction is one write of MAIL/RCPT/DATA when the server offers PIPELINING
(RFC 2920), else one command at a time; then the body, dot-stuffed at C speed
and written from memoryviews without another copy.

``SMTPConnection`` is one session (connect, EHLO, STARTTLS or implicit TLS,
AUTH PLAIN/LOGIN, transactions, RSET, QUIT); it *has* an ``SMTPStream`` (the
socket, TLS, bytes and replies) and is the engine's channel: it holds the
``deadline`` of the step in progress. Its methods that talk are generators
that yield when the socket would block, so one thread can drive many
sessions. Errors that concern the whole session are raised as
``SendTransientError``/``SendPermanentError`` naming ``host:port``, the
``socket``/``ssl`` ones through one table (``_EXCEPTIONS``); everything a
server says about a recipient comes back as a ``Reply`` per recipient.
``ConnectionLost`` tells the caller whether the body may have reached the
server (``after_data``).
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from time import monotonic
from typing import Any

from pbtp_mailer.errors import SendPermanentError, SendTransientError
from pbtp_mailer.senders.smtp_engine import Expired, Job
from pbtp_mailer.senders.smtp_stream import SMTPStream
from pbtp_mailer.senders.smtp_wire import (
    ConnectionLost,
    EnvelopeRefused,
    Reply,
    TLSMode,
    addr,
    dot_stuff,
    parse_queue_id,
    stuffed,
)

__all__ = ["Reply", "TLSMode", "SMTPConnection", "ConnectionLost", "EnvelopeRefused", "dot_stuff",
           "parse_queue_id"]

@dataclass(frozen=True)
class _Step:
    """How a failure is worded while connecting or during STARTTLS (``{reason}``, ``{exc}``)."""

    timed_out: str
    hung_up: str
    os_error: str


_CONNECT = _Step("connection timed out after {timeout:g} s",
                 "cannot connect: closed during the TLS handshake", "cannot connect: {reason}")
_STARTTLS = _Step("TLS handshake timed out", "closed during STARTTLS", "connection lost: {exc}")


def _reason(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):
        return str(exc.strerror)
    return os.strerror(exc.errno) if exc.errno else str(exc)


#: foreign exception -> (our error, its message); the first row that matches wins, so
#: subclasses come first (a certificate error and a hang-up are SSLErrors, which are
#: OSErrors). A hang-up or a socket error is worth another try; a TLS error is not.
_EXCEPTIONS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...],
                         type[SendTransientError | SendPermanentError],
                         Callable[[_Step, Any, float], str]], ...] = (
    (Expired, SendTransientError, lambda step, exc, timeout: step.timed_out.format(
        timeout=timeout)),
    (ssl.SSLCertVerificationError, SendPermanentError,
     lambda step, exc, timeout: f"certificate verify failed: {exc.verify_message}"),
    ((ssl.SSLEOFError, ssl.SSLZeroReturnError), SendTransientError,
     lambda step, exc, timeout: step.hung_up),
    (ssl.SSLError, SendPermanentError,
     lambda step, exc, timeout: f"TLS failed: {exc.reason or exc}"),
    (OSError, SendTransientError, lambda step, exc, timeout: step.os_error.format(
        reason=_reason(exc), exc=exc)),
)


class SMTPConnection:
    """One SMTP session; see the module docstring."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: str = TLSMode.STARTTLS,
        ssl_context: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
        local_hostname: str = "localhost",
        connect_timeout: float = 30.0,
        timeout: float = 60.0,
    ) -> None:
        self.tls = tls
        self.ssl_context = ssl_context
        self.username = username
        self.password = password
        self.local_hostname = local_hostname
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.extensions: dict[str, str] = {}
        self.transactions = 0
        self.stream = SMTPStream(host, port, masked=self._secrets())
        self.place = self.stream.place
        #: ``time.monotonic()`` by which the step in progress must finish (the engine's)
        self.deadline = 0.0

    @property
    def sock(self) -> socket.socket | None:
        """The stream's socket, for the engine's selector."""
        return self.stream.sock

    @property
    def connected(self) -> bool:
        return self.stream.sock is not None

    @contextmanager
    def _mapped(self, step: _Step, timeout: float) -> Iterator[None]:
        """``socket``/``ssl`` errors and ``Expired`` inside the block -> our errors (``_EXCEPTIONS``)."""
        try:
            yield
        except (Expired, OSError) as exc:
            for kinds, error, message in _EXCEPTIONS:
                if isinstance(exc, kinds):
                    self.stream.abort()
                    raise error(f"{self.place}: {message(step, exc, timeout)}") from None
            raise  # pragma: no cover - OSError is the last row

    def _secrets(self) -> list[str | None]:
        if not self.password:
            return []
        plain = base64.b64encode(f"\0{self.username}\0{self.password}".encode()).decode()
        return [self.password, base64.b64encode(self.password.encode()).decode(), plain]

    def _timed_out(self, after_data: bool) -> ConnectionLost:
        return ConnectionLost(f"{self.place}: timed out after {self.timeout:g} s "
                              "waiting for the server", after_data=after_data)

    # -- session ----------------------------------------------------------

    def connect(self) -> Job[None]:
        """Connect, greet, secure and authenticate, or raise a session error."""
        self.abort()
        try:
            self.deadline = monotonic() + self.connect_timeout
            with self._mapped(_CONNECT, self.connect_timeout):
                yield from self.stream.open()
                if self.tls == TLSMode.IMPLICIT:
                    yield from self.stream.handshake(self.ssl_context)
            self.deadline = monotonic() + self.connect_timeout + self.timeout
            try:
                yield from self._session()
            except Expired:
                raise SendTransientError(
                    f"{self.place}: timed out while greeting, securing or logging in") from None
        except BaseException:
            self.abort()
            raise

    def _session(self) -> Job[None]:
        try:
            greeting = yield from self.stream.read_reply()
            if greeting.code != 220:
                raise self._error("refused the session", greeting)
            yield from self._ehlo()
            if self.tls == TLSMode.STARTTLS:
                yield from self._starttls()
                yield from self._ehlo()
            if self.username:
                yield from self._auth()
        except ConnectionLost as exc:
            raise SendTransientError(str(exc)) from None

    def _starttls(self) -> Job[None]:
        if "starttls" not in self.extensions:
            raise SendPermanentError(
                f"{self.place}: server does not offer STARTTLS and tls = 'starttls' "
                "(refusing to send in plain text)",
                hint="use tls = 'implicit' for port 465, or fix the server",
            )
        reply = yield from self.stream.command("STARTTLS")
        if reply.code != 220:
            raise self._error("STARTTLS refused", reply)
        # nothing the server sent in plain text may be read as if it came over TLS
        self.stream.discard_replies()
        session_deadline = self.deadline
        self.deadline = min(session_deadline, monotonic() + self.connect_timeout)
        with self._mapped(_STARTTLS, self.connect_timeout):
            yield from self.stream.handshake(self.ssl_context)
        self.deadline = session_deadline

    def _error(self, what: str, reply: Reply) -> SendTransientError | SendPermanentError:
        message = f"{self.place}: {what} ({reply})"
        if 400 <= reply.code < 500:
            return SendTransientError(message, code=reply.code)
        return SendPermanentError(message, code=reply.code)

    def _ehlo(self) -> Job[None]:
        reply = yield from self.stream.command(f"EHLO {self.local_hostname}")
        if reply.code != 250:
            reply = yield from self.stream.command(f"HELO {self.local_hostname}")
            if reply.code != 250:
                raise self._error("refused EHLO and HELO", reply)
            self.extensions = {}
            return
        ext: dict[str, str] = {}
        for line in reply.text.split("\n")[1:]:
            word, _, params = line.strip().partition(" ")
            ext[word.lower()] = params
        self.extensions = ext

    def _auth(self) -> Job[None]:
        user = self.username or ""
        if self.password is None:
            raise SendPermanentError(
                f"{self.place}: no password for '{user}' (its environment variable is not set)")
        mechanisms = self.extensions.get("auth", "").upper().split()
        if "PLAIN" in mechanisms:
            token = base64.b64encode(f"\0{user}\0{self.password}".encode()).decode()
            reply = yield from self.stream.command(f"AUTH PLAIN {token}")
        elif "LOGIN" in mechanisms:
            reply = yield from self.stream.command("AUTH LOGIN")
            if reply.code == 334:
                reply = yield from self.stream.command(base64.b64encode(user.encode()).decode())
            if reply.code == 334:
                reply = yield from self.stream.command(base64.b64encode(self.password.encode()).decode())
        else:
            offered = ", ".join(mechanisms) or "no AUTH at all"
            raise SendPermanentError(
                f"{self.place}: cannot log in as '{user}': server offers {offered} "
                "(need PLAIN or LOGIN)")
        if reply.code != 235:
            if 400 <= reply.code < 500:
                raise SendTransientError(
                    f"{self.place}: authentication failed for '{user}' ({reply})",
                    code=reply.code)
            raise SendPermanentError(
                f"{self.place}: authentication failed for '{user}' ({reply})", code=reply.code)

    def quit(self) -> Job[None]:
        if self.stream.sock is not None:
            self.deadline = monotonic() + min(self.timeout, 5.0)
            try:
                yield from self.stream.command("QUIT")
            except (ConnectionLost, Expired):
                pass
        self.abort()

    def abort(self) -> None:
        """Close the socket at once (no QUIT); harmless when already closed."""
        self.stream.abort()
        self.transactions = 0

    # -- one transaction --------------------------------------------------

    def send(self, mail_from: str, rcpt_to: Sequence[str], data: bytes,
             dot_safe: bool = False) -> Job[list[Reply]]:
        """One transaction: a reply per recipient (DATA's reply for the accepted ones).

        Raises ``ConnectionLost`` when the session breaks; ``after_data`` says
        whether the body was (partly) sent, i.e. whether the server may have
        accepted the message.
        """
        params = self._mail_params(mail_from, rcpt_to, len(data))
        if params is None:
            reply = Reply(553, "5.6.7 server does not support SMTPUTF8 addresses")
            return [reply] * len(rcpt_to)
        commands = [f"MAIL FROM:{addr(mail_from)}{params}"]
        commands += [f"RCPT TO:{addr(r)}" for r in rcpt_to]
        # one deadline per transaction, moved on for the body, rather than one per
        # line: the protocol is cheaper than timers at loopback speed
        after_data = False
        self.deadline = monotonic() + self.timeout
        try:
            mail, rcpts, data_reply = yield from self._envelope(commands, len(rcpt_to))
            accepted = [r.ok for r in rcpts]
            if mail.code == 421:
                # the server is closing this session (often an idle timeout)
                self.abort()
                raise ConnectionLost(f"{self.place}: server closing the session ({mail})",
                                     after_data=False)
            if not mail.ok:
                yield from self._reset(data_reply)
                if mail.code >= 500:
                    raise EnvelopeRefused(mail)
                return [mail] * len(rcpt_to)
            if data_reply.code != 354:
                yield from self._reset(data_reply)
                if any(accepted):
                    # the server refused DATA although some RCPT passed: the message's fault
                    refused = Reply(data_reply.code, data_reply.text, to_message=True)
                    return [refused if ok else r for ok, r in zip(accepted, rcpts, strict=True)]
                return rcpts
            if not any(accepted):
                # a non-conforming server said 354 with no recipient: end it empty
                yield from self.stream.write(b".\r\n")
                yield from self.stream.read_replies(1)
                self.transactions += 1
                return rcpts
            after_data = True
            final = yield from self._body(data, dot_safe)
        except Expired:
            self.abort()
            raise self._timed_out(after_data=after_data) from None
        except ConnectionLost as exc:
            raise ConnectionLost(str(exc), after_data=after_data) from None
        self.transactions += 1
        if final.code == 421:
            self.abort()
        final = Reply(final.code, final.text, to_message=True)
        return [final if ok else r for ok, r in zip(accepted, rcpts, strict=True)]

    def _mail_params(self, mail_from: str, rcpt_to: Sequence[str], size: int) -> str | None:
        """MAIL FROM's parameters; None when the addresses need SMTPUTF8 and it is not offered."""
        ext = self.extensions
        params = ""
        if "8bitmime" in ext:
            # declaring 8BITMIME for 7-bit data is harmless and spares a pass over it
            params += " BODY=8BITMIME"
        if not (mail_from.isascii() and "".join(rcpt_to).isascii()):
            if "smtputf8" not in ext:
                return None
            params += " SMTPUTF8"
        if "size" in ext:
            params += f" SIZE={size}"
        return params

    def _body(self, data: bytes, dot_safe: bool) -> Job[Reply]:
        """The body after 354, and the server's verdict on the message."""
        # big bodies get time to travel: at least 64 KB/s on top of the timeout
        self.deadline = monotonic() + self.timeout + len(data) / 65536
        try:
            if dot_safe:  # no line starts with ".": nothing to stuff, no scan
                end = b".\r\n" if data[-2:] == b"\r\n" else b"\r\n.\r\n"
                yield from self.stream.write(data, end)
            else:
                yield from self.stream.write(*stuffed(data))
        except ConnectionLost:
            if not self.stream.has_replies:
                raise
            # the server answered (552 too big, say) and hung up before the end
        (final,) = yield from self.stream.read_replies(1)
        return final

    def _envelope(self, commands: list[str], n: int) -> Job[tuple[Reply, list[Reply], Reply]]:
        """MAIL, RCPT... and DATA: in one write with PIPELINING, else one by one."""
        if "pipelining" in self.extensions:
            yield from self.stream.write(("\r\n".join(commands) + "\r\nDATA\r\n").encode("utf-8"))
            replies = yield from self.stream.read_replies(n + 2)
            return replies[0], replies[1:-1], replies[-1]
        mail = yield from self.stream.command(commands[0])
        if not mail.ok:
            return mail, [mail] * n, Reply(503, "not sent")
        rcpts = []
        for c in commands[1:]:
            rcpts.append((yield from self.stream.command(c)))
        if not any(r.ok for r in rcpts):
            return mail, rcpts, Reply(503, "not sent")
        return mail, rcpts, (yield from self.stream.command("DATA"))

    def _reset(self, last: Reply) -> Job[None]:
        """End a failed transaction; a session that cannot be reset is dropped."""
        if last.code == 421:
            self.abort()
            return
        try:
            reply = yield from self.stream.command("RSET")
        except ConnectionLost:
            reply = Reply(0, "")
        if reply.code != 250:
            self.abort()
