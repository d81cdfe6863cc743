"""Fixtures for the sender tests: messages, configs and one harness per sender kind."""

from __future__ import annotations

import io
import mailbox
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from pbtp_mailer.config import Config, config_from_dict
from pbtp_mailer.errors import SendPermanentError, SendTransientError
from pbtp_mailer.senders.base import Outgoing, Sender, SenderSpec
from pbtp_mailer.senders.registry import build_sender
from tests.support.certs import make_cert
from tests.support.httpfake import SES_ACCESS_KEY, FakeAPI
from tests.support.smtpd import FakeSMTPServer, free_port

FROM = "news@example.org"
SMTP_USER, SMTP_PASSWORD = "news", "s3cret-pass-word"
API_SECRET = "api-secret-value-123"


def make_message(to: str = "reader@example.net", subject: str = "Hello",
                 body: str = "Hello reader.\r\n", *, from_: str = FROM,
                 extra: str = "") -> bytes:
    """A small RFC 5322 message with the headers a newsletter carries (CRLF)."""
    from email.header import Header

    subj = subject if subject.isascii() else Header(subject, "utf-8").encode()
    raw = (
        f"From: PBTP News <{from_}>\r\nTo: {to}\r\nSubject: {subj}\r\n"
        "Date: Sun, 01 Mar 2026 12:00:00 +0000\r\n"
        f"Message-ID: <m-{abs(hash((to, subject))) % 10**9}@example.org>\r\n"
        "List-Id: PBTP News <pbtp-news.example.org>\r\n"
        "List-Unsubscribe: <https://news.example.org/u/tok>\r\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        f"{extra}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return raw.encode("utf-8") + body.encode("utf-8")


def outgoing(to: str = "reader@example.net", **kwargs: Any) -> Outgoing:
    return Outgoing(FROM, (to,), make_message(to, **kwargs), ref=to)


def make_config(tmp_path: Path, senders: dict[str, dict[str, Any]] | None = None,
                default_sender: str | None = None,
                environ: dict[str, str] | None = None) -> Config:
    raw: dict[str, Any] = {
        "newsletter": {
            "name": "PBTP News", "from": f"PBTP News <{FROM}>",
            "postal_address": "1 Example St", "web_base_url": "https://news.example.org/",
            "unsubscribe_base_url": "https://news.example.org/u/",
            "list_id": "PBTP News <pbtp-news.example.org>",
        },
        "senders": senders or {},
    }
    if default_sender:
        raw["default_sender"] = default_sender
    return config_from_dict(raw, tmp_path / "pbtp-mailer.toml", environ or {})


@dataclass
class Received:
    rcpts: tuple[str, ...]
    subject: str
    text: str


@dataclass
class Harness:
    """One sender kind behind a uniform face for the contract tests."""

    kind: str
    make: Callable[..., Sender]
    received: Callable[[], list[Received]]
    refuse: Callable[[str], None] | None = None
    down: Callable[[], Sender] | None = None
    wrong_credentials: Callable[[], Sender] | None = None
    secret: str | None = None
    place: str = ""
    #: make the server refuse the message to this recipient as such (content, size)
    refuse_message: Callable[[str], None] | None = None
    cleanup: list[Callable[[], None]] = field(default_factory=list)


def _parse(raw: bytes) -> tuple[str, str]:
    msg: Any = BytesParser(policy=policy.default).parsebytes(raw)
    part = msg.get_body(("plain", "html"))
    return str(msg.get("subject", "")), part.get_content() if part is not None else ""


def _memory(tmp_path: Path) -> Harness:
    from pbtp_mailer.senders.memory import MemorySender

    fail: dict[str, list[Any]] = {}
    reject: dict[str, list[Any]] = {}
    made: list[MemorySender] = []

    def make(**opts: Any) -> Sender:
        s = MemorySender(SenderSpec("memory", "memory", {"fail": fail, "reject": reject,
                                                         **opts}))
        made.append(s)
        return s

    def received() -> list[Received]:
        return [Received(m.rcpt_to, *_parse(m.data)) for s in made for m in s.outbox]

    return Harness(
        "memory", make, received,
        refuse=lambda addr: fail.__setitem__(addr, [550, "5.1.1 no such user"]),
        down=lambda: make(down=True), wrong_credentials=lambda: make(auth_fails=True),
        place="memory",
        refuse_message=lambda addr: reject.__setitem__(addr, [552, "5.3.4 message too big"]),
    )


def _outbox(tmp_path: Path) -> Harness:
    path = tmp_path / "outbox"

    def make(**opts: Any) -> Sender:
        return build_sender(SenderSpec("outbox", "outbox", {"path": "outbox", **opts},
                                       base_dir=str(tmp_path)))

    def received() -> list[Received]:
        out = []
        box = mailbox.Maildir(path, create=False)
        try:
            for key in sorted(box.keys()):
                raw = box.get_bytes(key)
                msg = BytesParser(policy=policy.default).parsebytes(raw)
                rcpts = tuple(a.strip() for a in str(msg["X-Envelope-To"]).split(","))
                out.append(Received(rcpts, *_parse(raw)))
        finally:
            box.close()
        return out

    def down() -> Sender:
        blocker = tmp_path / "not-a-dir"
        blocker.write_text("x")
        return build_sender(SenderSpec("outbox", "outbox", {"path": str(blocker / "box")}))

    return Harness("outbox", make, received, down=down, place="outbox")


def _console(tmp_path: Path) -> Harness:
    stream = io.StringIO()

    def make(**opts: Any) -> Sender:
        return build_sender(SenderSpec("console", "console", {"stream": stream, **opts}))

    def received() -> list[Received]:
        out = []
        for line in stream.getvalue().splitlines():
            head, subject, _size = line.split(" | ")
            rcpts = tuple(head.split(" -> ", 1)[1].split(", "))
            out.append(Received(rcpts, subject, ""))
        return out

    return Harness("console", make, received, place="console")


def _smtp(tmp_path: Path) -> Harness:
    cert = make_cert(tmp_path / "tls")
    server = FakeSMTPServer(tls="starttls", cert=cert, users={SMTP_USER: SMTP_PASSWORD})
    server.start()
    environ = {"PBTP_SMTP_PASSWORD": SMTP_PASSWORD}
    base = {"host": "127.0.0.1", "port": server.port, "username": SMTP_USER,
            "password_env": "PBTP_SMTP_PASSWORD", "ca_file": str(cert[0]),
            "timeout": 20}

    def make(**opts: Any) -> Sender:
        return build_sender(SenderSpec("relay", "smtp", {**base, **opts}, environ))

    def received() -> list[Received]:
        return [Received(m.rcpt_tos, *_parse(m.data)) for m in server.messages]

    def refuse(addr: str) -> None:
        server.rcpt_codes[addr] = "550 5.1.1 no such user"

    def down() -> Sender:
        return make(port=free_port())

    def wrong() -> Sender:
        return build_sender(SenderSpec("relay", "smtp", base,
                                       {"PBTP_SMTP_PASSWORD": "wrong-password"}))

    h = Harness("smtp", make, received, refuse, down, wrong, SMTP_PASSWORD,
                place="127.0.0.1:",
                refuse_message=lambda addr: server.data_codes_for.__setitem__(
                    addr, "554 5.7.1 message refused as spam"))
    h.cleanup.append(server.stop)
    return h


_ENV = {"postmark": "POSTMARK_SERVER_TOKEN", "sendgrid": "SENDGRID_API_KEY",
        "mailgun": "MAILGUN_API_KEY", "ses": "AWS_SECRET_ACCESS_KEY"}
_EXTRA: dict[str, dict[str, Any]] = {"mailgun": {"domain": "mg.example.org"},
                                     "ses": {"region": "eu-west-1"}}


def _api(kind: str) -> Callable[[Path], Harness]:
    def build(tmp_path: Path) -> Harness:
        api = FakeAPI(kind, secret=API_SECRET).start()
        env = {_ENV[kind]: API_SECRET, "AWS_ACCESS_KEY_ID": SES_ACCESS_KEY}

        def make(**opts: Any) -> Sender:
            options = {"base_url": api.base_url, "timeout": 10, **_EXTRA.get(kind, {}), **opts}
            return build_sender(SenderSpec(kind, kind, options, env))

        def received() -> list[Received]:
            assert api.problems == []
            return [Received(d.rcpts, d.subject, d.text) for d in api.deliveries]

        def wrong() -> Sender:
            options = {"base_url": api.base_url, **_EXTRA.get(kind, {})}
            return build_sender(SenderSpec(kind, kind, options,
                                           {**env, _ENV[kind]: "wrong-secret-value"}))

        h = Harness(kind, make, received,
                    refuse=lambda addr: api.reject.__setitem__(addr, "refused"),
                    down=lambda: make(base_url=f"http://127.0.0.1:{free_port()}"),
                    wrong_credentials=wrong, secret=API_SECRET, place=kind,
                    refuse_message=lambda addr: api.refuse_message.__setitem__(addr, "too big"))
        h.cleanup.append(api.stop)
        return h

    return build


HARNESSES: dict[str, Callable[[Path], Harness]] = {
    "memory": _memory, "outbox": _outbox, "console": _console, "smtp": _smtp,
    "postmark": _api("postmark"), "sendgrid": _api("sendgrid"),
    "mailgun": _api("mailgun"), "ses": _api("ses"),
}


@pytest.fixture(params=sorted(HARNESSES))
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    h = HARNESSES[request.param](tmp_path)
    try:
        yield h
    finally:
        for fn in h.cleanup:
            fn()


__all__ = ["Harness", "SendPermanentError", "SendTransientError", "make_message",
           "outgoing", "make_config", "FROM", "SMTP_USER", "SMTP_PASSWORD", "API_SECRET"]
