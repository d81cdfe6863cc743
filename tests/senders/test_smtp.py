"""SMTP specifics against a real aiosmtpd on 127.0.0.1: TLS, AUTH, faults, reconnects."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pbtp_mailer.errors import ConfigError, SendPermanentError, SendTransientError
from pbtp_mailer.senders.base import Outgoing, SenderSpec, Status
from pbtp_mailer.senders.smtp import SMTPSender, is_loopback
from pbtp_mailer.senders.smtp_client import dot_stuff, parse_queue_id
from pbtp_mailer.senders.smtp_wire import Reply, ReplyReader, stuffed
from tests.senders.conftest import FROM, SMTP_PASSWORD, SMTP_USER, make_message, outgoing
from tests.support.certs import make_cert
from tests.support.smtpd import FakeSMTPServer


def smtp(server: FakeSMTPServer, environ: dict[str, str] | None = None,
         **options: Any) -> SMTPSender:
    opts = {"host": "127.0.0.1", "port": server.port, "tls": "none", "timeout": 10, **options}
    return SMTPSender(SenderSpec("relay", "smtp", opts, environ or {}))


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    return make_cert(tmp_path / "tls")


@pytest.fixture(params=[True, False], ids=["pipelining", "no-pipelining"])
def server(request: pytest.FixtureRequest) -> Any:
    with FakeSMTPServer(pipelining=request.param) as srv:
        yield srv


# -- TLS and AUTH -------------------------------------------------------------


def test_starttls_and_auth(cert: tuple[Path, Path]) -> None:
    with FakeSMTPServer(tls="starttls", cert=cert, users={SMTP_USER: SMTP_PASSWORD}) as srv:
        sender = smtp(srv, {"PW": SMTP_PASSWORD}, tls="starttls", ca_file=str(cert[0]),
                      username=SMTP_USER, password_env="PW")
        with sender:
            (r,) = sender.send([outgoing()])
        assert r.ok and r.provider_id == "FAKE00000001"
        (got,) = srv.messages
        assert got.tls and got.user == SMTP_USER


def test_implicit_tls_for_smtps(cert: tuple[Path, Path]) -> None:
    with FakeSMTPServer(tls="implicit", cert=cert) as srv:
        sender = SMTPSender(SenderSpec("s", "smtps", {
            "host": "127.0.0.1", "port": srv.port, "ca_file": str(cert[0])}))
        assert sender.tls == "implicit"
        with sender:
            (r,) = sender.send([outgoing()])
        assert r.ok and srv.messages[0].tls


def test_tls_sessions_in_parallel_carry_big_bodies(cert: tuple[Path, Path]) -> None:
    body = "".join(f".line {i} of a long body\r\n" for i in range(12000))  # ~300 KB
    with FakeSMTPServer(tls="implicit", cert=cert) as srv:
        sender = SMTPSender(SenderSpec("s", "smtps", {
            "host": "127.0.0.1", "port": srv.port, "ca_file": str(cert[0]), "connections": 4}))
        messages = [Outgoing(FROM, (f"r{i}@example.net",), make_message(body=body))
                    for i in range(8)]
        with sender:
            results = sender.send(messages[:4]) + sender.send(messages[4:])
        assert all(r.ok for r in results) and srv.sessions == 4
        assert sorted(m.data for m in srv.messages) == sorted(m.data for m in messages)


def test_server_without_starttls_is_refused() -> None:
    with FakeSMTPServer() as srv:
        sender = smtp(srv, tls="starttls")
        with pytest.raises(SendPermanentError, match="does not offer STARTTLS"):
            sender.open()
        assert srv.messages == [] and srv.attempts == 0


def test_certificate_verify_failed(cert: tuple[Path, Path]) -> None:
    with FakeSMTPServer(tls="starttls", cert=cert) as srv:
        sender = smtp(srv, tls="starttls")  # no ca_file: the system store does not know it
        with pytest.raises(SendPermanentError) as info:
            sender.open()
        assert str(info.value).startswith(f"127.0.0.1:{srv.port}: certificate verify failed: ")


def test_authentication_failed_message_hides_password(cert: tuple[Path, Path]) -> None:
    with FakeSMTPServer(tls="starttls", cert=cert, users={SMTP_USER: SMTP_PASSWORD}) as srv:
        sender = smtp(srv, {"PW": "not-the-password"}, tls="starttls", ca_file=str(cert[0]),
                      username=SMTP_USER, password_env="PW")
        with pytest.raises(SendPermanentError) as info:
            sender.open()
        message = str(info.value)
        assert message.startswith(
            f"127.0.0.1:{srv.port}: authentication failed for 'news' (535 5.7.8")
        assert "not-the-password" not in message and info.value.code == 535


def test_missing_password_names_the_variable() -> None:
    with FakeSMTPServer() as srv:
        sender = smtp(srv, {}, username="news", password_env="PBTP_SMTP_PASSWORD")
        with pytest.raises(SendPermanentError, match=r"\$PBTP_SMTP_PASSWORD is not set"):
            sender.open()


def test_plaintext_only_for_loopback_unless_allowed() -> None:
    spec = SenderSpec("r", "smtp", {"host": "smtp.example.org", "tls": "none"})
    with pytest.raises(ConfigError, match="allowed only for a loopback host"):
        SMTPSender(spec)
    allowed = SenderSpec("r", "smtp", {"host": "smtp.example.org", "tls": "none",
                                       "allow_plaintext": True})
    assert SMTPSender(allowed).tls == "none"
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("10.0.0.1")


def test_defaults_port_and_tls() -> None:
    s = SMTPSender(SenderSpec("r", "smtp", {"host": "smtp.example.org"}))
    assert (s.port, s.tls, s.batch_size) == (587, "starttls", 4)
    s = SMTPSender(SenderSpec("r", "smtp", {"host": "smtp.example.org", "port": 465}))
    assert s.tls == "implicit"
    s = SMTPSender(SenderSpec("r", "smtp", {"host": "h.example.org", "connections": 8}))
    assert s.batch_size == 8
    assert "password" not in repr(s)


# -- per-recipient replies ----------------------------------------------------


def test_per_recipient_codes(server: FakeSMTPServer) -> None:
    server.rcpt_codes = {"gone@example.net": "550 5.1.1 no such user",
                         "full@example.net": "452 4.2.2 mailbox full"}
    msg = Outgoing(FROM, ("a@example.net", "gone@example.net", "full@example.net"),
                   make_message(), ref=7)
    with smtp(server) as sender:
        results = sender.send([msg])
    assert [(r.recipient, r.status, r.code) for r in results] == [
        ("a@example.net", Status.ACCEPTED, 250),
        ("gone@example.net", Status.PERMANENT, 550),
        ("full@example.net", Status.TRANSIENT, 452),
    ]
    assert results[1].text == "5.1.1 no such user"
    assert server.messages[0].rcpt_tos == ("a@example.net",)


def test_all_recipients_refused_then_session_goes_on(server: FakeSMTPServer) -> None:
    server.rcpt_codes = {"gone@example.net": "550 5.1.1 no such user"}
    with smtp(server, connections=1) as sender:
        (bad,) = sender.send([outgoing("gone@example.net")])
        (good,) = sender.send([outgoing("a@example.net")])
    assert bad.status is Status.PERMANENT and good.ok
    assert server.sessions == 1  # RSET, not a new session


# a 5xx to DATA refuses the message, not its recipients (issue 11, finding 1)
@pytest.mark.parametrize(("reply", "status"), [("451 4.3.0 try later", Status.TRANSIENT),
                                               ("554 5.7.1 spam", Status.REJECTED)])
def test_data_reply_applies_to_accepted_recipients(server: FakeSMTPServer, reply: str,
                                                   status: Status) -> None:
    server.data_codes = [reply]
    msg = Outgoing(FROM, ("a@example.net", "b@example.net"), make_message())
    with smtp(server) as sender:
        results = sender.send([msg, outgoing()])
    assert [r.status for r in results] == [status, status, Status.ACCEPTED]
    assert results[0].text == reply[4:]


def test_drop_mid_data_is_transient_and_reconnects(server: FakeSMTPServer) -> None:
    server.drop_mid_data = 1
    with smtp(server, connections=1) as sender:
        (lost,) = sender.send([outgoing("a@example.net")])
        (after,) = sender.send([outgoing("b@example.net")])
    assert lost.status is Status.TRANSIENT and lost.code is None
    assert "may have been delivered" in lost.text
    assert after.ok and server.sessions == 2


def test_server_closing_sessions_early_is_survived(server: FakeSMTPServer) -> None:
    server.drop_after = 3  # like a provider capping messages per connection
    with smtp(server, connections=1) as sender:
        results = [sender.send([outgoing(f"r{i}@example.net")])[0] for i in range(10)]
    assert all(r.ok for r in results)
    assert len(server.messages) == 10 and server.sessions >= 4


def test_421_closes_and_next_message_reconnects(server: FakeSMTPServer) -> None:
    server.data_codes = ["421 4.7.0 closing"]
    with smtp(server, connections=1) as sender:
        (first,) = sender.send([outgoing()])
        (second,) = sender.send([outgoing()])
    assert first.status is Status.TRANSIENT and first.code == 421
    assert second.ok


def test_max_messages_per_connection(server: FakeSMTPServer) -> None:
    with smtp(server, connections=1, max_messages_per_connection=2) as sender:
        for i in range(6):
            assert sender.send([outgoing(f"r{i}@example.net")])[0].ok
    assert server.sessions == 3


def test_parallel_connections(server: FakeSMTPServer) -> None:
    server.data_delay = 0.3
    with smtp(server, connections=4) as sender:
        assert sender.batch_size == 4
        t0 = time.monotonic()
        results = sender.send([outgoing(f"r{i}@example.net") for i in range(4)])
        elapsed = time.monotonic() - t0
    assert all(r.ok for r in results)
    assert elapsed < 1.0, elapsed  # four at once, not 4 x 0.3 s
    assert server.sessions == 4


def test_timeout_is_transient(server: FakeSMTPServer) -> None:
    server.data_delay = 2.0
    with smtp(server, connections=1, timeout=0.4) as sender:
        (r,) = sender.send([outgoing()])
    assert r.status is Status.TRANSIENT and "timed out" in r.text


def test_random_fault_rates(server: FakeSMTPServer) -> None:
    server.rates = {"451": 0.2, "550": 0.1}
    server.rcpt_codes = {f"r{j}@example.net": "550 5.1.1 no such user" for j in (5, 33)}
    with smtp(server, connections=2) as sender:
        results = []
        for i in range(0, 60, 2):
            results += sender.send([outgoing(f"r{j}@example.net") for j in (i, i + 1)])
    statuses = {r.status for r in results}
    assert statuses == {Status.ACCEPTED, Status.TRANSIENT, Status.PERMANENT, Status.REJECTED}
    assert {r.recipient for r in results if r.status is Status.PERMANENT} == {
        "r5@example.net", "r33@example.net"}  # only RCPT refusals blame the recipient
    assert len(server.messages) == sum(r.ok for r in results)


@pytest.fixture
def listener() -> Iterator[Callable[[bytes | None], int]]:
    """``listen(greeting)``: a port on 127.0.0.1 whose first client gets ``greeting``
    and a hang-up; with None it is never answered at all."""
    sockets: list[socket.socket] = []
    threads: list[threading.Thread] = []

    def listen(greeting: bytes | None) -> int:
        server = socket.create_server(("127.0.0.1", 0))
        server.settimeout(5)
        sockets.append(server)

        def serve() -> None:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(greeting or b"")

        if greeting is not None:
            threads.append(threading.Thread(target=serve, daemon=True))
            threads[-1].start()
        return int(server.getsockname()[1])

    yield listen
    for thread in threads:
        thread.join(timeout=10)
    for server in sockets:
        server.close()


def test_silent_server_times_out_while_greeting(listener: Callable[[bytes | None], int]) -> None:
    port = listener(None)
    sender = SMTPSender(SenderSpec("relay", "smtp", {
        "host": "127.0.0.1", "port": port, "tls": "none", "timeout": 0.3,
        "connect_timeout": 0.3}))
    t0 = time.monotonic()
    with pytest.raises(SendTransientError) as info:
        sender.open()
    assert str(info.value) == (f"127.0.0.1:{port}: timed out while greeting, "
                               "securing or logging in")
    assert time.monotonic() - t0 < 3


@pytest.mark.parametrize(("greeting", "error", "text"), [
    (b"554 5.3.2 not today\r\n", SendPermanentError, "refused the session (554 5.3.2 not today)"),
    (b"421-4.3.2 busy,\r\n421 4.3.2 come back later\r\n", SendTransientError,
     "refused the session (421 4.3.2 busy,\n4.3.2 come back later)"),
    (b"", SendTransientError, "connection closed by the server"),
    (b"HTTP/1.1 400 Bad Request\r\n", SendTransientError, "not an SMTP reply: 'HTTP/1.1 400"),
])
def test_greeting_problems(listener: Callable[[bytes | None], int], greeting: bytes,
                           error: type[Exception], text: str) -> None:
    port = listener(greeting)
    sender = SMTPSender(SenderSpec("relay", "smtp", {
        "host": "127.0.0.1", "port": port, "tls": "none", "timeout": 5}))
    with pytest.raises(error) as info:
        sender.open()
    assert str(info.value).startswith(f"127.0.0.1:{port}: {text}")


def test_body_refused_before_its_end_gets_the_reply() -> None:
    """A server that answers 552 in the middle of a big body and hangs up."""
    def serve(server: socket.socket) -> None:
        conn, _ = server.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"220 tiny\r\n")
            lines.readline()
            conn.sendall(b"250-tiny\r\n250 PIPELINING\r\n")
            for _ in range(3):  # MAIL, RCPT, DATA
                lines.readline()
            conn.sendall(b"250 ok\r\n250 ok\r\n354 go on\r\n")
            lines.read(100_000)
            conn.sendall(b"552 5.3.4 message too big\r\n")

    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(10)
        thread = threading.Thread(target=serve, args=(server,), daemon=True)
        thread.start()
        sender = SMTPSender(SenderSpec("relay", "smtp", {
            "host": "127.0.0.1", "port": server.getsockname()[1], "tls": "none",
            "timeout": 10, "connections": 1}))
        big = make_message() + b"y" * (20 * 1024 * 1024)
        with sender:
            (r,) = sender.send([Outgoing(FROM, ("a@example.net",), big)])
        thread.join(timeout=10)
    assert (r.status, r.code, r.text) == (Status.REJECTED, 552, "5.3.4 message too big")


def test_server_down_raises_transient() -> None:
    srv = FakeSMTPServer()
    sender = smtp(srv)  # never started
    with pytest.raises(SendTransientError, match=f"127.0.0.1:{srv.port}: cannot connect"):
        sender.open()


def test_smtputf8_recipient(server: FakeSMTPServer) -> None:
    with smtp(server) as sender:
        (r,) = sender.send([Outgoing(FROM, ("jürgen@example.net",), make_message())])
    assert r.ok and server.messages[0].rcpt_tos == ("jürgen@example.net",)


def test_body_round_trips_byte_for_byte(server: FakeSMTPServer) -> None:
    body = ".leading dot\r\n..two\r\nmiddle . dot\r\n.\r\nend without newline"
    data = make_message(body=body)
    with smtp(server) as sender:
        assert sender.send([Outgoing(FROM, ("a@example.net",), data)])[0].ok
    assert server.messages[0].data == data + b"\r\n"


# -- helpers -------------------------------------------------------------------


def test_dot_stuff() -> None:
    assert dot_stuff(b"a\r\n.b\r\n") == b"a\r\n..b\r\n.\r\n"
    assert dot_stuff(b".x") == b"..x\r\n.\r\n"
    assert dot_stuff(b"") == b"\r\n.\r\n"
    data = b"no dot starts a line.\r\n"
    body, end = stuffed(data)
    assert body is data and end == b".\r\n"  # not copied


def test_reply_reader_joins_lines_across_reads() -> None:
    reader = ReplyReader()
    for chunk in (b"250-smtp.example.org\r\n250-PIPE", b"LINING\r\n250 SIZE 1000", b"\r",
                  b"\n354 go ahead\r\n550"):
        assert reader.feed(chunk) is None
    assert list(reader.replies) == [Reply(250, "smtp.example.org\nPIPELINING\nSIZE 1000"),
                                    Reply(354, "go ahead")]
    assert reader.feed(b" 5.1.1 gone\r\n") is None and reader.replies[-1] == Reply(550, "5.1.1 gone")
    assert ReplyReader().feed(b"25\r\n") == "not an SMTP reply: '25'"
    assert ReplyReader().feed(b"2" * 70000) == "reply line too long"


@pytest.mark.parametrize(("text", "qid"), [
    ("2.0.0 Ok: queued as 4FQ3X21abc", "4FQ3X21abc"),
    ("OK id=1rXyZa-0001Ab-2C", "1rXyZa-0001Ab-2C"),
    ("Ok 0100018e1a2b3c4d-5e6f", "0100018e1a2b3c4d-5e6f"),
    ("OK", None),
    ("2.0.0 Ok", None),
])
def test_parse_queue_id(text: str, qid: str | None) -> None:
    assert parse_queue_id(text) == qid


def test_concurrent_send_calls_share_the_sessions(server: FakeSMTPServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with smtp(server, connections=2) as sender, ThreadPoolExecutor(3) as pool:
        batches = [[outgoing(f"t{t}m{i}@example.net") for i in range(2)] for t in range(6)]
        results = [r for rs in pool.map(sender.send, batches) for r in rs]
    assert all(r.ok for r in results) and len(server.messages) == 12
    assert server.sessions == 2


def test_a_session_failure_next_to_successes_never_blames_recipients() -> None:
    from pbtp_mailer.senders._options import BatchFailure, finish_batch, per_recipient

    a, b = outgoing("a@example.net"), outgoing("b@example.net")
    ok = per_recipient(a, Status.ACCEPTED, 250, "ok", "id1")
    failed = BatchFailure(SendPermanentError("h:25: authentication failed", code=535))
    results = finish_batch([a, b], [ok, failed])
    assert [r.status for r in results] == [Status.ACCEPTED, Status.TRANSIENT]
    with pytest.raises(SendPermanentError):
        finish_batch([b], [failed])


def test_refused_sender_is_never_blamed_on_recipients(server: FakeSMTPServer) -> None:
    server.mail_codes = {"bad-sender@example.org": "553 5.7.1 sender rejected"}
    refused = Outgoing("bad-sender@example.org", ("a@example.net",), make_message())
    with smtp(server, connections=1) as sender:
        with pytest.raises(SendPermanentError) as info:
            sender.send([refused])
        assert "MAIL FROM:<bad-sender@example.org> refused (553 5.7.1" in str(info.value)
        ok, other = sender.send([outgoing(), refused])
    assert ok.ok and other.status is Status.TRANSIENT and other.code == 553


def test_dot_safe_messages_arrive_byte_for_byte(server: FakeSMTPServer) -> None:
    """A producer's dot_safe promise skips the dot-stuffing scan; the bytes are the same."""
    plain = make_message(body="No line starts with a dot here.\r\n=2E is QP for one.\r\n")
    with smtp(server) as sender:
        results = sender.send([Outgoing(FROM, ("a@example.net",), plain, ref=1, dot_safe=True),
                               Outgoing(FROM, ("b@example.net",), plain + b".leading\r\n",
                                        ref=2)])
    assert [r.status for r in results] == [Status.ACCEPTED, Status.ACCEPTED]
    got = {m.rcpt_tos[0]: m.data for m in server.messages}
    assert got["a@example.net"].replace(b"\r\n", b"\n") == plain.replace(b"\r\n", b"\n")
    assert got["b@example.net"].endswith(b".leading\r\n".replace(b"\r\n", b"\n")) or \
        got["b@example.net"].endswith(b".leading\r\n")
