"""DKIM: signatures verify with dkimpy against the public key, and break on any change."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import dkim
import pytest

from pbtp_mailer.errors import ConfigError
from pbtp_mailer.senders.base import SenderSpec
from pbtp_mailer.senders.dkim import DKIMSigner, DKIMSigningSender, signed_headers
from pbtp_mailer.senders.memory import MemorySender
from pbtp_mailer.senders.registry import build_sender
from tests.senders.conftest import make_message, outgoing


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    folder = tmp_path_factory.mktemp("dkim")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_file = folder / "news.private"
    rsa_file.write_bytes(rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    rsa_pub = base64.b64encode(rsa_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_file = folder / "news-ed.private"
    ed_file.write_bytes(base64.b64encode(ed_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
        serialization.NoEncryption())))
    ed_pub = base64.b64encode(ed_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    records = {
        b"news._domainkey.example.org.": b"v=DKIM1; k=rsa; p=" + rsa_pub,
        b"newsed._domainkey.example.org.": b"v=DKIM1; k=ed25519; p=" + ed_pub,
    }
    return {"rsa": rsa_file, "ed": ed_file, "records": records}


def dns(keys: dict[str, Any]) -> Any:
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return keys["records"].get(name)
    return lookup


def test_rsa_signature_verifies_and_breaks_on_change(keys: dict[str, Any]) -> None:
    signer = DKIMSigner("news", "example.org", keys["rsa"].read_bytes())
    signed = signer.sign(make_message(subject="March issue"))
    assert signed.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")
    assert dkim.verify(signed, dnsfunc=dns(keys)) is True
    tampered = signed.replace(b"Subject: March issue", b"Subject: March issuf")
    assert tampered != signed
    assert dkim.verify(tampered, dnsfunc=dns(keys)) is False


def test_signed_header_list() -> None:
    data = make_message(extra="Reply-To: office@example.org\r\n")
    names = signed_headers(data)
    assert names == [b"from", b"to", b"subject", b"date", b"message-id", b"mime-version",
                     b"content-type", b"reply-to", b"list-id", b"list-unsubscribe",
                     b"list-unsubscribe-post"]
    ses = signed_headers(data, rewrites_date_and_message_id=True)
    assert b"date" not in ses and b"message-id" not in ses and b"list-id" in ses


def test_ed25519_as_second_signature(keys: dict[str, Any]) -> None:
    signer = DKIMSigner("news", "example.org", keys["rsa"].read_bytes(),
                        keys["ed"].read_bytes(), "newsed")
    signed = signer.sign(make_message())
    checker = dkim.DKIM(signed)
    assert checker.verify(idx=0, dnsfunc=dns(keys)) is True  # rsa-sha256
    assert checker.verify(idx=1, dnsfunc=dns(keys)) is True  # ed25519-sha256
    assert b"a=ed25519-sha256" in signed


def test_registry_wraps_sender_and_keeps_results_pointing_at_originals(
        keys: dict[str, Any], tmp_path: Path) -> None:
    spec = SenderSpec("memory", "memory", {
        "dkim_selector": "news", "dkim_domain": "example.org",
        "dkim_key_file": keys["rsa"].name}, base_dir=str(keys["rsa"].parent))
    sender = build_sender(spec)
    assert isinstance(sender, DKIMSigningSender)
    msg = outgoing()
    with sender:
        (result,) = sender.send([msg])
    assert result.ok and result.message is msg
    (kept,) = sender.outbox
    assert dkim.verify(kept.data, dnsfunc=dns(keys)) is True


def test_ses_style_sender_does_not_sign_date_and_message_id(keys: dict[str, Any]) -> None:
    inner = MemorySender()
    inner.rewrites_date_and_message_id = True
    spec = SenderSpec("x", "memory", {"dkim_selector": "news", "dkim_domain": "example.org",
                                      "dkim_key_file": str(keys["rsa"])})
    sender = DKIMSigningSender.from_spec(inner, spec)
    sender.send([outgoing()])
    data = inner.outbox[0].data
    header = data.split(b"\r\n\r\n")[0].split(b"DKIM-Signature:")[1]
    h_tag = header.split(b"h=")[1].split(b";")[0].replace(b"\r\n", b"").replace(b" ", b"")
    assert b"date" not in h_tag.split(b":") and b"message-id" not in h_tag.split(b":")
    # SES replaces Date and Message-ID: the signature must survive that
    rewritten = data.replace(b"Date: Sun, 01 Mar 2026 12:00:00 +0000",
                             b"Date: Mon, 02 Mar 2026 08:00:00 +0000")
    assert dkim.verify(rewritten, dnsfunc=dns(keys)) is True


def test_missing_or_bad_key_is_a_config_error(keys: dict[str, Any], tmp_path: Path) -> None:
    base = {"dkim_selector": "news", "dkim_domain": "example.org"}
    with pytest.raises(ConfigError, match="dkim_key_file"):
        build_sender(SenderSpec("m", "memory", {**base, "dkim_key_file": "nope.pem"},
                                base_dir=str(tmp_path)))
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(ConfigError, match="DKIM key unusable"):
        build_sender(SenderSpec("m", "memory", {**base, "dkim_key_file": str(bad)}))
    with pytest.raises(ConfigError, match="dkim_selector and dkim_domain"):
        build_sender(SenderSpec("m", "memory", {"dkim_key_file": str(keys["rsa"])}))
