"""A real SMTP server for tests: aiosmtpd on a free 127.0.0.1 port, with faults.

    with FakeSMTPServer() as server:                       # plain, PIPELINING
        ... send to 127.0.0.1:server.port ...
        server.messages                                    # every accepted message

    FakeSMTPServer(tls="starttls", cert=make_cert(tmp_path))   # or tls="implicit"
    FakeSMTPServer(users={"news": "s3cret"})                    # AUTH PLAIN/LOGIN

Faults are plain attributes, changeable while the server runs:

* ``rcpt_codes = {"bad@example.org": "550 5.1.1 no such user"}`` per recipient;
* ``mail_codes = {"news@example.org": "553 5.7.1 sender rejected"}`` per sender;
* ``data_codes = ["451 4.3.0 try later", "552 5.3.4 message too big", ...]``
  replies to the next DATAs (after the body);
* ``data_codes_for = {"a@example.org": "554 5.7.1 spam"}`` replies to the DATA
  of every message to that recipient (a content rejection of one message);
* ``rates = {"421": 0.01, "451": 0.02, "550": 0.01, "drop": 0.01}`` random DATA
  replies (seeded by ``seed``; a 421 also closes the session; ``drop`` loses the
  connection after the body arrived, without a reply);
* ``drop_mid_data = n`` drops the next n sessions after the body arrived,
  without a reply (the client cannot know whether the message went through);
* ``drop_after = n`` closes each session when it starts its (n+1)-th
  transaction, like providers that cap messages per connection;
* ``data_delay = seconds`` before answering DATA (client timeouts).

``messages`` holds ``Received`` records (envelope, bytes, session facts) of
every message the server answered 250; ``attempts`` counts every DATA.
It speaks to 127.0.0.1 only and stops its thread on ``stop()``/exit.
"""

from __future__ import annotations

import asyncio
import random
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["FakeSMTPServer", "Received", "free_port"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    tls: bool
    user: str | None
    session: int

    @property
    def message(self) -> Any:
        from email import message_from_bytes, policy

        return message_from_bytes(self.data, policy=policy.default)


@dataclass
class _Counters:
    sessions: int = 0
    per_session: dict[int, int] = field(default_factory=dict)


class _Handler:
    def __init__(self, server: FakeSMTPServer) -> None:
        self.server = server

    async def handle_EHLO(self, smtp: SMTP, session: Session, envelope: Envelope,
                          hostname: str, responses: list[str]) -> list[str]:
        session.host_name = hostname
        if self.server.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, smtp: SMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        srv = self.server
        sid = srv._session_id(session)
        if srv.drop_after is not None and srv._counters.per_session.get(sid, 0) >= srv.drop_after:
            assert smtp.transport is not None
            smtp.transport.close()
            return "421 4.7.0 too many messages on this connection"
        code = srv.mail_codes.get(address.lower())
        if code:
            return code
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, smtp: SMTP, session: Session, envelope: Envelope,
                          address: str, options: list[str]) -> str:
        code = self.server.rcpt_codes.get(address.lower())
        if code:
            return code
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        srv = self.server
        sid = srv._session_id(session)
        with srv._lock:
            srv.attempts += 1
            srv._counters.per_session[sid] = srv._counters.per_session.get(sid, 0) + 1
            if srv.drop_mid_data > 0:
                srv.drop_mid_data -= 1
                drop = True
            else:
                drop = False
            scripted = srv.data_codes.pop(0) if srv.data_codes else None
            scripted = scripted or next((srv.data_codes_for[r.lower()] for r in envelope.rcpt_tos
                                         if r.lower() in srv.data_codes_for), None)
            if scripted is None:
                roll = srv._random.random()
                acc = 0.0
                for code, rate in sorted(srv.rates.items()):
                    acc += rate
                    if roll < acc:
                        if code == "drop":  # lose the connection after the body, no reply
                            drop = True
                        else:
                            scripted = f"{code} {_TEXT.get(code[0], 'scripted')}"
                        break
        if drop:
            assert smtp.transport is not None
            smtp.transport.abort()
            return "250 OK (never seen)"
        if srv.data_delay:
            await asyncio.sleep(srv.data_delay)
        if scripted:
            if scripted.startswith("421"):
                asyncio.get_running_loop().call_soon(smtp.transport.close)  # type: ignore[union-attr]
            return scripted
        content = envelope.original_content or b""
        with srv._lock:
            srv.counter += 1
            qid = f"FAKE{srv.counter:08d}"
            srv.messages.append(Received(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=content,
                tls=smtp._tls_protocol is not None or srv.tls == "implicit",
                user=(session.auth_data.login.decode() if isinstance(
                    session.auth_data, LoginPassword) else None),
                session=sid,
            ))
        return f"250 2.0.0 Ok: queued as {qid}"


_TEXT = {"4": "4.3.0 scripted temporary failure", "5": "5.7.1 scripted rejection"}


class FakeSMTPServer:
    """aiosmtpd in a thread on 127.0.0.1 (see module docstring)."""

    def __init__(
        self,
        *,
        tls: str = "none",
        cert: tuple[Path, Path] | None = None,
        users: dict[str, str] | None = None,
        pipelining: bool = True,
        smtputf8: bool = True,
        seed: int = 0,
        port: int | None = None,
    ) -> None:
        if tls != "none" and cert is None:
            raise ValueError("tls needs cert=(cert_file, key_file); see tests.support.certs")
        self.tls = tls
        self.cert = cert
        self.users = users
        self.pipelining = pipelining
        self.smtputf8 = smtputf8
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.messages: list[Received] = []
        self.attempts = 0
        self.counter = 0
        self.rcpt_codes: dict[str, str] = {}
        self.mail_codes: dict[str, str] = {}
        self.data_codes: list[str] = []
        self.data_codes_for: dict[str, str] = {}
        self.rates: dict[str, float] = {}
        self.drop_mid_data = 0
        self.drop_after: int | None = None
        self.data_delay = 0.0
        self.auth_attempts = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._counters = _Counters()
        self._controller: Controller | None = None

    # -- control ------------------------------------------------------------

    def _session_id(self, session: Session) -> int:
        # id() of a freed Session is reused by the next one: tag the object instead
        with self._lock:
            sid = getattr(session, "_fake_sid", None)
            if sid is None:
                self._counters.sessions += 1
                sid = session._fake_sid = self._counters.sessions
            return int(sid)

    @property
    def sessions(self) -> int:
        """How many sessions sent at least one MAIL or DATA."""
        return self._counters.sessions

    def _server_context(self) -> ssl.SSLContext:
        assert self.cert is not None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert[0]), str(self.cert[1]))
        return ctx

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        self.auth_attempts += 1
        if isinstance(auth_data, LoginPassword) and self.users is not None:
            login = auth_data.login.decode()
            if self.users.get(login) == auth_data.password.decode():
                return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    def start(self) -> FakeSMTPServer:
        kwargs: dict[str, Any] = {
            "enable_SMTPUTF8": self.smtputf8,
            "decode_data": False,
            "data_size_limit": 64 * 1024 * 1024,
            "timeout": 30,
        }
        ssl_context = None
        if self.tls == "starttls":
            kwargs["tls_context"] = self._server_context()
        elif self.tls == "implicit":
            ssl_context = self._server_context()
        if self.users is not None:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_require_tls"] = self.tls == "starttls"
        self._controller = Controller(
            _Handler(self), hostname=self.host, port=self.port,
            ssl_context=ssl_context, ready_timeout=10, **kwargs,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> FakeSMTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.attempts = 0
