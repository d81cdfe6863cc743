"""[dkim]: each configured key's selector record exists, holds the public half of
the configured private key, and verifies a message signed with that key
(dkimpy, its DNS questions answered by our resolver, so a CNAME chain or a
record split into 255-byte strings is read as receivers read it).

A provider that signs for us (SES Easy DKIM, Postmark, ...) is its own
responsibility: the check names the records the provider asks for.
"""

from __future__ import annotations

import base64
import re

from pbtp_mailer.doctor.facts import DKIMKey, Facts
from pbtp_mailer.doctor.report import Check
from pbtp_mailer.doctor.resolver import Resolver
from pbtp_mailer.errors import DoctorError

__all__ = ["check_dkim", "public_record", "dkim_tags", "TEST_MESSAGE"]

TEST_MESSAGE = (b"From: doctor@%s\r\nTo: doctor@example.invalid\r\nSubject: pbtp-mailer doctor\r\n"
                b"Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMessage-ID: <doctor@pbtp-mailer>\r\n"
                b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                b"A message signed and verified by pbtp-mailer doctor.\r\n")


def dkim_tags(record: str) -> dict[str, str]:
    tags = {}
    for part in record.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            tags[name.strip().lower()] = re.sub(r"\s+", "", value)
    return tags


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(body)) + body


def _der_int(n: int) -> bytes:
    return _der(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big"))


def public_record(key: DKIMKey, private: bytes) -> tuple[str, bytes]:
    """``(TXT value to publish, public key bytes)`` for a private key file's content."""
    if key.algorithm == "ed25519":
        from nacl.signing import SigningKey

        public = bytes(SigningKey(base64.b64decode(private.strip())).verify_key)
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(public).decode()}", public
    import dkim.crypto

    pk = dkim.crypto.parse_pem_private_key(private)
    rsa = _der(0x30, _der_int(pk["modulus"]) + _der_int(pk["publicExponent"]))
    algo = bytes.fromhex("300d06092a864886f70d0101010500")
    spki = _der(0x30, algo + _der(0x03, b"\0" + rsa))
    return f"v=DKIM1; k=rsa; p={base64.b64encode(spki).decode()}", spki


def _same_key(key: DKIMKey, published: bytes, mine: bytes) -> bool:
    if key.algorithm == "ed25519":
        return published == mine
    import dkim.crypto

    try:
        return bool(dkim.crypto.parse_public_key(published) == dkim.crypto.parse_public_key(mine))
    except dkim.crypto.UnparsableKeyError:
        return False


def _check_key(resolver: Resolver, key: DKIMKey) -> Check:
    import dkim

    name = f"{key.selector}._domainkey.{key.domain}"
    try:
        private = key.key_file.read_bytes()
        want, mine = public_record(key, private)
    except OSError as exc:
        return Check("dkim", "fail", f"{name}: cannot read {key.key_file}: {exc.strerror}",
                     "fix dkim_key_file in the sender's table")
    except ImportError:
        return Check("dkim", "fail", f"{name}: ed25519 keys need PyNaCl", "pip install pynacl")
    except Exception as exc:  # noqa: BLE001 - any parse failure of a key file is one message
        return Check("dkim", "fail", f"{name}: {key.key_file} is not a usable {key.algorithm} "
                     f"private key ({type(exc).__name__})", "fix dkim_key_file")
    publish = f"publish TXT {name} \"{want}\""
    try:
        records = [r for r in resolver.txt(name) if "p=" in r or r.startswith("v=DKIM1")]
    except DoctorError as exc:
        return Check("dkim", "fail", str(exc), "check the resolver, or pass --nameserver")
    if not records:
        return Check("dkim", "fail", f"{name}: no DKIM record", publish)
    if len(records) > 1:
        return Check("dkim", "fail", f"{name}: {len(records)} DKIM records", f"keep one: {want}")
    tags = dkim_tags(records[0])
    try:
        published = base64.b64decode(tags.get("p", ""), validate=True)
    except ValueError:
        published = b""
    if not published:
        return Check("dkim", "fail", f"{name}: p= is empty or not base64 (a revoked key)",
                     publish)
    if not _same_key(key, published, mine):
        return Check("dkim", "fail", f"{name}: the published key is not the public half of "
                     f"{key.key_file}", publish)
    algo = b"ed25519-sha256" if key.algorithm == "ed25519" else b"rsa-sha256"
    try:
        msg = TEST_MESSAGE % key.domain.encode()
        signed = dkim.sign(msg, key.selector.encode(), key.domain.encode(), private,
                           canonicalize=(b"relaxed", b"relaxed"), signature_algorithm=algo) + msg
        good = dkim.verify(signed, dnsfunc=resolver.dkim_dnsfunc)
    except DoctorError as exc:
        return Check("dkim", "fail", str(exc), "check the resolver, or pass --nameserver")
    except dkim.DKIMException as exc:
        return Check("dkim", "fail", f"{name}: cannot sign with {key.key_file}: {exc}",
                     "fix dkim_key_file")
    if not good:
        return Check("dkim", "fail", f"{name}: a message signed with {key.key_file} does not "
                     "verify against the published record", publish)
    return Check("dkim", "ok", f"{name}: {key.algorithm} key matches {key.key_file.name}; "
                 "a signed message verifies")


def check_dkim(resolver: Resolver, facts: Facts) -> list[Check]:
    if facts.dkim_keys:
        return [_check_key(resolver, key) for key in facts.dkim_keys]
    if facts.provider is not None:
        return [Check("dkim", "ok", f"sender '{facts.sender_name}': {facts.provider.name} signs "
                      f"(its responsibility); it asks for {facts.provider.dkim_records}")]
    if facts.local:
        return [Check("dkim", "ok", f"sender '{facts.sender_name}' ({facts.kind}) delivers "
                      "nothing: no signature needed")]
    sel = "news"
    return [Check("dkim", "fail", f"sender '{facts.sender_name}' does not DKIM-sign: Gmail, "
                  "Yahoo and Microsoft reject or junk unsigned bulk mail",
                  f"openssl genrsa -out keys/{sel}.private 2048; in [senders.{facts.sender_name}] "
                  f"set dkim_selector = \"{sel}\", dkim_domain = \"{facts.from_domain}\", "
                  f"dkim_key_file = \"keys/{sel}.private\"; then run pbtp-mailer doctor again "
                  f"for the TXT record to publish at {sel}._domainkey.{facts.from_domain}")]
