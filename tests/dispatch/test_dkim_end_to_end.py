"""The real March issue, dispatched through a configured sender with DKIM: every copy
carries a signature that verifies and covers the List-* headers (EMAIL-STANDARDS 15, 42)."""

from __future__ import annotations

import base64
import re

import dkim


def test_dispatched_copies_are_dkim_signed_and_verify(world):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from pbtp_mailer.senders.memory import MemorySender

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (world.root / "dkim.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    pub = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    cfg = world.root / "pbtp-mailer.toml"
    cfg.write_text(cfg.read_text(encoding="utf-8") + '\n[senders.signed]\nkind = "memory"\n'
                   'dkim_selector = "pbtp"\ndkim_domain = "example.org"\n'
                   'dkim_key_file = "dkim.pem"\n', encoding="utf-8")
    world.make_list(4)
    store = world.store()
    MemorySender.reset()
    from pbtp_mailer.dispatch.dispatcher import Dispatcher

    plan, opts = world.plan(store, sender="signed")
    report = Dispatcher(plan, opts).run()
    assert report.sent == 4
    copies = [m.data for m in MemorySender.mailbox]
    assert len(copies) == 4

    def dns(name, timeout=5):
        return b"v=DKIM1; k=rsa; p=" + pub if name == b"pbtp._domainkey.example.org." else None

    for raw in copies:
        assert dkim.verify(raw, dnsfunc=dns)
        sig = re.search(rb"DKIM-Signature:(.*?)\r\n(?! )", raw, re.S).group(1)
        signed = re.search(rb"h=([^;]+);", re.sub(rb"\s+", b"", sig)).group(1).lower().split(b":")
        for header in (b"from", b"to", b"subject", b"date", b"message-id", b"list-id",
                       b"list-unsubscribe", b"list-unsubscribe-post"):
            assert header in signed
        tampered = raw.replace(b"Subject: PBTP", b"Subject: PBTQ", 1)
        assert not dkim.verify(tampered, dnsfunc=dns)
