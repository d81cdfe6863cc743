"""Our SMTP sender against a real Postfix on 127.0.0.1, read back from its Maildir.

Postfix runs as a private instance in a temporary directory (see
``tests/support/postfix.py``); it advertises PIPELINING, so this exercises
the pipelined path against a production MTA. Skipped only when Postfix is
not installed or we are not root.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pbtp_mailer.errors import SendPermanentError
from pbtp_mailer.senders.base import Outgoing, SenderSpec, Status
from pbtp_mailer.senders.smtp import SMTPSender
from tests.senders.conftest import FROM, make_message
from tests.support.certs import make_cert
from tests.support.postfix import DOMAIN, PostfixServer, postfix_unavailable

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(postfix_unavailable() is not None,
                       reason=postfix_unavailable() or ""),
]


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("postfix-tls"))


@pytest.fixture(scope="module")
def postfix(cert: tuple[Path, Path]) -> Iterator[PostfixServer]:
    with PostfixServer(refuse={f"gone@{DOMAIN}": "550 5.1.1 no such user",
                               f"later@{DOMAIN}": "450 4.2.0 try again later"},
                       cert=cert) as pf:
        yield pf


def test_delivers_to_postfix_mailbox(postfix: PostfixServer) -> None:
    before = len(postfix.delivered())
    body = ".dot at line start\r\nGrüße aus Zürich\r\n" + "line of text\r\n" * 3000
    messages = [
        Outgoing(FROM, (f"r{i}@{DOMAIN}",),
                 make_message(f"r{i}@{DOMAIN}", subject=f"Issue {i} — Grüße", body=body))
        for i in range(6)
    ]
    spec = SenderSpec("postfix", "smtp", {"host": "127.0.0.1", "port": postfix.port,
                                          "tls": "none", "connections": 3})
    with SMTPSender(spec) as sender:
        results = sender.send(messages[:3]) + sender.send(messages[3:])
    assert all(r.status is Status.ACCEPTED for r in results), results
    # Postfix says "250 2.0.0 Ok: queued as 4Xy..." and we keep that id
    assert all(r.provider_id and r.provider_id in r.text for r in results)
    got = postfix.wait_for(before + 6)[before:]
    subjects = sorted(str(m["subject"]) for m in got)
    assert subjects == sorted(f"Issue {i} — Grüße" for i in range(6))
    text = got[0].get_body(("plain",)).get_content()
    assert text.replace("\r\n", "\n") == body.replace("\r\n", "\n")
    assert got[0]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_postfix_refuses_some_recipients(postfix: PostfixServer) -> None:
    before = len(postfix.delivered())
    msg = Outgoing(FROM, (f"ok@{DOMAIN}", f"gone@{DOMAIN}", f"later@{DOMAIN}",
                          "someone@elsewhere.example"), make_message(f"ok@{DOMAIN}"))
    spec = SenderSpec("postfix", "smtp", {"host": "127.0.0.1", "port": postfix.port,
                                          "tls": "none", "connections": 1})
    with SMTPSender(spec) as sender:
        results = sender.send([msg])
    assert [(r.status, r.code) for r in results] == [
        (Status.ACCEPTED, 250), (Status.PERMANENT, 550), (Status.TRANSIENT, 450),
        (Status.PERMANENT, 554)]
    assert "no such user" in results[1].text and "Relay access denied" in results[3].text
    (got,) = postfix.wait_for(before + 1)[before:]
    assert got["To"] == f"ok@{DOMAIN}"


def test_starttls_with_verified_certificate(postfix: PostfixServer,
                                            cert: tuple[Path, Path]) -> None:
    before = len(postfix.delivered())
    spec = SenderSpec("postfix", "smtp", {"host": "127.0.0.1", "port": postfix.port,
                                          "tls": "starttls", "ca_file": str(cert[0])})
    with SMTPSender(spec) as sender:
        (r,) = sender.send([Outgoing(FROM, (f"tls@{DOMAIN}",), make_message(f"tls@{DOMAIN}"))])
    assert r.ok
    (got,) = postfix.wait_for(before + 1)[before:]
    assert "with ESMTPS" in str(got["Received"])  # Postfix notes the TLS session
    unverified = SMTPSender(SenderSpec("postfix", "smtp", {
        "host": "127.0.0.1", "port": postfix.port, "tls": "starttls"}))
    with pytest.raises(SendPermanentError, match="certificate verify failed"):
        unverified.open()
