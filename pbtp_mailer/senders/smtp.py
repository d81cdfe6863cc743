"""SMTP sender: N persistent sessions on one event loop in a background thread.

``send(batch)`` hands the messages to whichever session is idle and waits;
with ``batch_size == connections`` the dispatcher gives each session one
message per call, so after a crash at most ``connections`` sends are in
doubt. A session is re-opened after a drop or after
``max_messages_per_connection`` transactions (some providers silently drop
sessions that exceed a limit). A reused session found dead *before* the body
was sent is re-opened once for that message: nothing can have been
delivered, so this is reconnection, not a retry policy.

TLS policy: ``tls = "starttls"`` (default; never falls back to plain text),
``"implicit"`` (default for ``smtps`` and port 465), or ``"none"``, accepted
only for a loopback host unless ``allow_plaintext = true``. Certificates are
always verified (``ssl.create_default_context()``, plus ``ca_file``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import socket
import ssl
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, ClassVar, TypeVar

from ..errors import ConfigError, SendPermanentError, SendTransientError
from ._options import BatchFailure, Options, finish_batch, per_recipient
from .base import BaseSender, Outgoing, SenderSpec, SendResult, Status
from .smtp_client import (
    ConnectionLost,
    EnvelopeRefused,
    Reply,
    SMTPConnection,
    TLSMode,
    parse_queue_id,
)

__all__ = ["SMTPSender", "is_loopback"]

T = TypeVar("T")


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
    status = Status.PERMANENT if 500 <= code < 600 else Status.TRANSIENT
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
        port = opts.integer("port", 465 if tls == TLSMode.IMPLICIT else 587, minimum=1)
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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pool: list[SMTPConnection] = []
        # sessions not in a transaction: shared by concurrent send() calls
        self._idle: asyncio.Queue[SMTPConnection] = asyncio.Queue()

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

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        # every step inside has its own timeout; this bound is only a backstop
        try:
            return future.result(timeout=self.connect_timeout * 3 + self.timeout * 20)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise SendTransientError(f"{self.place}: no progress for too long") from None

    def open(self) -> None:
        """Start the loop and open one session, proving address, TLS and credentials."""
        if self._loop is not None:
            return
        if self.username and self.password is None:
            env = self.password_env
            raise SendPermanentError(
                f"{self.place}: no password for '{self.username}'"
                + (f": ${env} is not set" if env else ": name its variable with password_env"),
                hint=f"export {env}=..." if env else None,
            )
        context = self._ssl_context()
        self._pool = [self._new_connection(context) for _ in range(self.connections)]
        self._idle = asyncio.Queue()  # bound to the loop on first use, in its thread
        for conn in self._pool:
            self._idle.put_nowait(conn)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"smtp:{self.place}",
                                  daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self._run(self._pool[0].connect())
        except BaseException:
            self.close()
            raise

    def check(self) -> str:
        """Open one session (TLS, AUTH) and close it: what ``senders check`` does."""
        self.open()
        self.close()
        secured = {"none": "plain text", "starttls": "STARTTLS", "implicit": "TLS"}[self.tls]
        who = f" as '{self.username}'" if self.username else ""
        return f"{self.place}: connected ({secured}){who}"

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            if self._pool:
                asyncio.run_coroutine_threadsafe(self._quit_all(), loop).result(
                    timeout=self.timeout + 10)
        except Exception:  # noqa: BLE001 - closing must not fail the caller
            pass
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            if not thread.is_alive():
                loop.close()
            self._loop = self._thread = None
            self._pool = []

    async def _quit_all(self) -> None:
        await asyncio.gather(*(c.quit() for c in self._pool), return_exceptions=True)

    # -- sending ----------------------------------------------------------

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]:
        if not batch:
            return []
        if self._loop is None:
            self.open()
        outcomes = self._run(self._send_batch(batch))
        return finish_batch(batch, outcomes)

    async def _send_batch(
        self, batch: Sequence[Outgoing]
    ) -> list[list[SendResult] | BatchFailure]:
        idle = self._idle
        async def one(msg: Outgoing) -> list[SendResult] | BatchFailure:
            conn = await idle.get()
            try:
                return await self._send_one(conn, msg)
            finally:
                idle.put_nowait(conn)

        if len(batch) == 1:
            return [await one(batch[0])]
        return list(await asyncio.gather(*(one(m) for m in batch)))

    async def _send_one(self, conn: SMTPConnection, msg: Outgoing
                        ) -> list[SendResult] | BatchFailure:
        for attempt in range(2):
            fresh = False
            if conn.connected and self.max_per_connection and \
                    conn.transactions >= self.max_per_connection:
                await conn.quit()
            if not conn.connected:
                try:
                    await conn.connect()
                except (SendTransientError, SendPermanentError) as exc:
                    return BatchFailure(exc)
                fresh = True
            try:
                replies = await conn.send(msg.mail_from, msg.rcpt_to, msg.data)
            except ConnectionLost as exc:
                await conn.abort()
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
