"""SES v2 Raw sending against moto's SES emulation (server mode on 127.0.0.1).

A second opinion next to the SigV4-checking fake in ``support/httpfake.py``:
moto implements SendEmail itself, including its refusal of unverified senders.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from pbtp_mailer.senders.base import Outgoing, SenderSpec, Status
from pbtp_mailer.senders.registry import build_sender
from tests.senders.conftest import make_message

moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed")
boto3 = pytest.importorskip("boto3")

ENV = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "moto-secret"}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    client = boto3.client("sesv2", region_name="eu-west-1", endpoint_url=url,
                          aws_access_key_id=ENV["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=ENV["AWS_SECRET_ACCESS_KEY"])
    client.create_email_identity(EmailIdentity="example.org")
    client.close()
    try:
        yield url
    finally:
        server.stop()


def test_raw_send_accepted_and_unverified_sender_rejected(moto_url: str) -> None:
    spec = SenderSpec("ses", "ses", {"region": "eu-west-1", "base_url": moto_url}, ENV)
    good = Outgoing("news@example.org", ("a@example.net",), make_message("a@example.net"))
    bad = Outgoing("news@unverified.example", ("b@example.net",), make_message("b@example.net"))
    with build_sender(spec) as sender:
        ok, refused = sender.send([good, bad])
    assert ok.status is Status.ACCEPTED and ok.provider_id
    # the unverified From is the message's fault, not b@example.net's
    assert refused.status is Status.REJECTED and refused.code == 400
    assert "MessageRejected" in refused.text
