"""SMTP sender: N persistent sessions driven from the calling thread.

``send(batch)`` gives the messages to the idle sessions and drives them all
with one selector loop (``smtp_engine``) until each message has its replies;
there is no event loop and no background thread. With
``batch_size == connections`` the dispatcher gives each session one message
per call, so after a crash at most ``connections`` sends are in doubt. A
session is re-opened after a drop, a 421 or ``max_messages_per_connection``
transactions (some providers silently drop sessions that exceed a limit). A
reused session found dead *before* the body was sent is re-opened once for
that message: nothing can have been delivered, so this is reconnection, not a
retry policy. Concurrent ``send`` calls from several threads share the
sessions: each takes the idle ones it needs and waits while there are none.

TLS policy: ``tls = "starttls"`` (default; never falls back to plain text),
``"implicit"`` (default for ``smtps`` and port 465), or ``"none"``, accepted
only for a loopback host unless ``allow_plaintext = true``. Certificates are
always verified (``ssl.create_default_context()``, plus ``ca_file``).
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
from collections import deque
from collections.abc import Sequence
from time import monotonic
from typing import ClassVar

from pbtp_mailer.errors import ConfigError, SendPermanentError, SendTransientError
from pbtp_mailer.senders._options import BatchFailure, Options, finish_batch, per_recipient
from pbtp_mailer.senders.base import BaseSender, Feed, Outgoing, SenderSpec, SendResult, Status
from pbtp_mailer.senders.smtp_client import (
    ConnectionLost,
    EnvelopeRefused,
    Reply,
    SMTPConnection,
    TLSMode,
    parse_queue_id,
)
from pbtp_mailer.senders.smtp_engine import Engine, Job

__all__ = ["SMTPSender", "is_loopback"]

#: what became of one message: a result per recipient, or why it was not tried
MessageOutcome = list[SendResult] | BatchFailure


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _result(msg: Outgoing, rcpt: str, reply: Reply, ids: dict[int, str | None]) -> SendResult:
    code = reply.code
    if 200 <= code < 300:
        key = id(reply)
        if key not in ids:
            ids[key] = parse_queue_id(reply.text)
        return SendResult(msg, rcpt, Status.ACCEPTED, code, reply.text, ids[key])
    if 500 <= code < 600:
        # a 5xx to DATA or to the body refuses the message (size, content), not the recipient
        status = Status.REJECTED if reply.to_message else Status.PERMANENT
    else:
        status = Status.TRANSIENT
    return SendResult(msg, rcpt, status, code, reply.text)


class SMTPSender(BaseSender):
    kind: ClassVar[str] = "smtp"
    OPTIONS: ClassVar[frozenset[str]] = frozenset({
        "host", "port", "tls", "username", "password_env", "connections",
        "max_messages_per_connection", "timeout", "connect_timeout", "ca_file",
        "allow_plaintext", "local_hostname",
    })

    def __init__(self, spec: SenderSpec) -> None:
        super().__init__(spec)
        opts = Options(spec, self.OPTIONS)
        host = opts.text("host")
        if not host:
            raise ConfigError(f"{opts.where}: 'host' is required")
        implicit_default = spec.kind == "smtps" or opts.get("port") in (465, "465")
        tls = opts.text("tls", TLSMode.IMPLICIT if implicit_default else TLSMode.STARTTLS)
        if tls not in TLSMode.ALL:
            raise ConfigError(f"{opts.where}: 'tls' must be one of {', '.join(TLSMode.ALL)}")
        port = opts.integer("port", 465 if tls == TLSMode.IMPLICIT else 587, minimum=1,
                            maximum=65535)
        assert tls is not None and port is not None
        if tls == TLSMode.NONE and not is_loopback(host) and not opts.flag("allow_plaintext"):
            raise ConfigError(
                f"{opts.where}: tls = 'none' sends passwords and mail in plain text; "
                f"allowed only for a loopback host, not {host!r}",
                hint="set allow_plaintext = true in the sender table if you really mean it",
            )
        self.host, self.port, self.tls = host, port, tls
        self.place = f"{host}:{port}"
        self.username = opts.text("username")
        self.password, self.password_env = opts.secret("password_env")
        self.connections = opts.concurrency("connections", default=4)
        self.batch_size = self.connections
        self.max_per_connection = opts.integer("max_messages_per_connection", 100) or 0
        self.timeout = opts.number("timeout", 60.0)
        self.connect_timeout = opts.number("connect_timeout", 30.0)
        self.ca_file = opts.path("ca_file")
        self.local_hostname = opts.text("local_hostname") or socket.gethostname() or "localhost"
        self._pool: list[SMTPConnection] = []
        # sessions not in a transaction: shared by concurrent send() calls
        self._idle: list[SMTPConnection] = []
        # selectors not in use, one per send() running at once (usually one)
        self._engines: list[Engine] = []
        self._lock = threading.Condition()

    def __repr__(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"<SMTPSender {self.name!r} {user}{self.place} tls={self.tls}>"

    # -- setup ------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext | None:
        if self.tls == TLSMode.NONE:
            return None
        try:
            return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"sender '{self.name}': ca_file {self.ca_file}: {exc}") from None

    def _new_connection(self, context: ssl.SSLContext | None) -> SMTPConnection:
        return SMTPConnection(
            self.host, self.port, tls=self.tls, ssl_context=context,
            username=self.username, password=self.password,
            local_hostname=self.local_hostname,
            connect_timeout=self.connect_timeout, timeout=self.timeout,
        )

    @property
    def _backstop(self) -> float:
        """How long a send() may wait for another thread's sessions to come back."""
        return self.connect_timeout * 3 + self.timeout * 20

    def open(self) -> None:
        """Open one session, proving address, TLS and credentials."""
        with self._lock:
            if self._pool:
                return
            if self.username and self.password is None:
                env = self.password_env
                raise SendPermanentError(
                    f"{self.place}: no password for '{self.username}'"
                    + (f": ${env} is not set" if env else ": name its variable with password_env"),
                    hint=f"export {env}=..." if env else None,
                )
            context = self._ssl_context()
            pool = [self._new_connection(context) for _ in range(self.connections)]
            engine = Engine()
            try:
                engine.run([(pool[0], pool[0].connect())])
            except BaseException:
                engine.close()
                raise
            self._pool, self._idle, self._engines = pool, list(pool), [engine]

    def check(self) -> str:
        """Open one session (TLS, AUTH) and close it: what ``senders check`` does."""
        self.open()
        self.close()
        secured = {"none": "plain text", "starttls": "STARTTLS", "implicit": "TLS"}[self.tls]
        who = f" as '{self.username}'" if self.username else ""
        return f"{self.place}: connected ({secured}){who}"

    def close(self) -> None:
        """QUIT the idle sessions; sessions still sending are closed when they come back."""
        with self._lock:
            idle, engines = self._idle, self._engines
            self._pool, self._idle, self._engines = [], [], []
            self._lock.notify_all()
        jobs = [(c, c.quit()) for c in idle if c.connected]
        engines = engines or ([Engine()] if jobs else [])
        try:
            if jobs:
                engines[0].run(jobs)
        except Exception:  # noqa: BLE001 - closing must not fail the caller
            pass
        finally:
            for conn in idle:
                conn.abort()
            for engine in engines:
                engine.close()

    # -- sending ----------------------------------------------------------

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]:
        if not batch:
            return []
        if not self._pool:
            self.open()
        conns, engine = self._acquire(len(batch))
        try:
            queue = deque(enumerate(batch))
            outcomes: list[MessageOutcome | None] = [None] * len(batch)
            engine.run([(conn, self._work(conn, queue, outcomes)) for conn in conns])
        finally:
            self._release(conns, engine)
        done = [o for o in outcomes if o is not None]
        assert len(done) == len(batch), "every message has an outcome once the jobs end"
        return finish_batch(batch, done)

    def send_stream(self, feed: Feed) -> None:
        """Every session takes the feed's next message as soon as it is free."""
        if not self._pool:
            self.open()
        conns, engine = self._acquire(len(self._pool))
        try:
            engine.run([(conn, self._stream_work(conn, feed)) for conn in conns])
        finally:
            self._release(conns, engine)

    def _stream_work(self, conn: SMTPConnection, feed: Feed) -> Job[None]:
        for _ in range(10**12):  # bounded by the feed: it returns None when done
            item = feed.take()
            if item is None:
                return
            if isinstance(item, float):
                yield item
                continue
            outcome = yield from self._send_one(conn, item)
            if isinstance(outcome, BatchFailure):
                feed.failed(item, outcome.error)
            else:
                feed.done(item, outcome)

    def _acquire(self, wanted: int) -> tuple[list[SMTPConnection], Engine]:
        """Up to ``wanted`` idle sessions, waiting for one while other threads hold them all."""
        with self._lock:
            deadline = monotonic() + self._backstop
            while not self._idle:
                left = deadline - monotonic()
                if not self._pool or left <= 0:
                    why = "no progress for too long" if self._pool else "sender closed"
                    raise SendTransientError(f"{self.place}: {why}")
                self._lock.wait(left)
            taken = self._idle[:wanted]
            del self._idle[:wanted]
            return taken, self._engines.pop() if self._engines else Engine()

    def _release(self, conns: list[SMTPConnection], engine: Engine) -> None:
        with self._lock:
            if conns[0] in self._pool:
                self._idle.extend(conns)
                self._engines.append(engine)
                self._lock.notify_all()
                return
        for conn in conns:  # the sender was closed meanwhile
            conn.abort()
        engine.close()

    def _work(self, conn: SMTPConnection, queue: deque[tuple[int, Outgoing]],
              outcomes: list[MessageOutcome | None]) -> Job[None]:
        """One session's share of a batch: the next message while any is left."""
        while queue:
            index, msg = queue.popleft()
            outcomes[index] = yield from self._send_one(conn, msg)

    def _send_one(self, conn: SMTPConnection, msg: Outgoing) -> Job[MessageOutcome]:
        for attempt in range(2):
            fresh = False
            if conn.connected and self.max_per_connection and \
                    conn.transactions >= self.max_per_connection:
                yield from conn.quit()
            if not conn.connected:
                try:
                    yield from conn.connect()
                except (SendTransientError, SendPermanentError) as exc:
                    return BatchFailure(exc)
                fresh = True
            try:
                replies = yield from conn.send(msg.mail_from, msg.rcpt_to, msg.data,
                                               msg.dot_safe)
            except ConnectionLost as exc:
                conn.abort()
                if exc.after_data:
                    return per_recipient(
                        msg, Status.TRANSIENT, None,
                        f"{exc} (during DATA: the message may have been delivered)")
                if not fresh and attempt == 0:
                    continue  # a stale reused session: once more on a new one
                return BatchFailure(SendTransientError(str(exc)))
            except EnvelopeRefused as exc:
                # a refused sender is our problem: never a bounce for the recipients
                return BatchFailure(SendPermanentError(
                    f"{self.place}: MAIL FROM:<{msg.mail_from}> refused ({exc.reply})",
                    code=exc.reply.code))
            ids: dict[int, str | None] = {}
            return [_result(msg, rcpt, reply, ids)
                    for rcpt, reply in zip(msg.rcpt_to, replies, strict=True)]
        raise AssertionError("unreachable")  # pragma: no cover
