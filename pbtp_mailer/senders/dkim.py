"""DKIM signing (dkimpy) as a wrapper around any sender, configured per sender.

    [senders.relay]
    kind = "smtp"
    dkim_selector = "news2026"
    dkim_domain = "example.org"
    dkim_key_file = "keys/news2026.private"            # PEM, RSA 2048
    dkim_ed25519_key_file = "keys/news2026e.private"    # optional second signature
    dkim_ed25519_selector = "news2026e"                 # default: dkim_selector

The registry wraps a sender in ``DKIMSigningSender`` when it has DKIM
options. rsa-sha256 always; ed25519-sha256 (RFC 8463) only as a second
signature. The signed headers are the list below when present, without Date
and Message-ID for senders that rewrite them (SES). Canonicalization is
relaxed/relaxed, which survives the header folding and trailing-space
changes relays are allowed to make.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from pbtp_mailer.errors import ConfigError, SendPermanentError
from pbtp_mailer.senders._options import Options
from pbtp_mailer.senders.base import Feed, Outgoing, Sender, SenderSpec, SendResult, stream_via

__all__ = ["DKIMSigner", "DKIMSigningSender", "SIGNED_HEADERS", "signed_headers"]

SIGNED_HEADERS = (
    "from", "to", "subject", "date", "message-id", "mime-version", "content-type",
    "reply-to", "list-id", "list-unsubscribe", "list-unsubscribe-post", "feedback-id",
)
_REWRITTEN = ("date", "message-id")


def signed_headers(data: bytes, *, rewrites_date_and_message_id: bool = False) -> list[bytes]:
    """The SIGNED_HEADERS present in ``data`` (From always), in that order."""
    end = data.find(b"\r\n\r\n")
    head = data[: end if end >= 0 else len(data)]
    present = set()
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") or b":" not in line:
            continue
        present.add(line.split(b":", 1)[0].strip().lower().decode("ascii", "replace"))
    wanted = [h for h in SIGNED_HEADERS if h in present or h == "from"]
    if rewrites_date_and_message_id:
        wanted = [h for h in wanted if h not in _REWRITTEN]
    return [h.encode() for h in wanted]


class DKIMSigner:
    """Signs messages for one domain with an RSA key and optionally an ed25519 key."""

    def __init__(self, selector: str, domain: str, rsa_key: bytes,
                 ed25519_key: bytes | None = None, ed25519_selector: str | None = None,
                 *, rewrites_date_and_message_id: bool = False) -> None:
        try:
            import dkim  # noqa: F401
        except ImportError:  # pragma: no cover - dkimpy is a dependency
            raise ConfigError("DKIM signing needs dkimpy: pip install dkimpy") from None
        self.selector = selector.encode()
        self.domain = domain.encode()
        self.rsa_key = rsa_key
        self.ed25519_key = ed25519_key
        self.ed25519_selector = (ed25519_selector or selector).encode()
        self.rewrites = rewrites_date_and_message_id

    def sign(self, data: bytes) -> bytes:
        """``data`` with DKIM-Signature header(s) prepended (RSA outermost last)."""
        import dkim

        headers = signed_headers(data, rewrites_date_and_message_id=self.rewrites)
        try:
            signed = data
            if self.ed25519_key is not None:
                signed = dkim.sign(signed, self.ed25519_selector, self.domain, self.ed25519_key,
                                   canonicalize=(b"relaxed", b"relaxed"),
                                   signature_algorithm=b"ed25519-sha256",
                                   include_headers=headers) + signed
            return dkim.sign(signed, self.selector, self.domain, self.rsa_key,
                             canonicalize=(b"relaxed", b"relaxed"),
                             signature_algorithm=b"rsa-sha256",
                             include_headers=headers) + signed
        except dkim.DKIMException as exc:
            raise SendPermanentError(f"dkim ({self.domain.decode()}): cannot sign: {exc}") \
                from None


def _read_key(opts: Options, key: str) -> bytes | None:
    path = opts.path(key)
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{opts.where}: {key} {path}: {exc.strerror}") from None


class DKIMSigningSender:
    """Any sender, with every message DKIM-signed before it leaves."""

    def __init__(self, inner: Sender, signer: DKIMSigner) -> None:
        self.inner = inner
        self.signer = signer
        self.name = inner.name
        self.batch_size = inner.batch_size
        self.rewrites_date_and_message_id = inner.rewrites_date_and_message_id

    @classmethod
    def from_spec(cls, inner: Sender, spec: SenderSpec) -> DKIMSigningSender:
        opts = Options(spec)
        selector, domain = opts.text("dkim_selector"), opts.text("dkim_domain")
        if not selector or not domain:
            raise ConfigError(f"{opts.where}: DKIM needs dkim_selector and dkim_domain")
        rsa = _read_key(opts, "dkim_key_file")
        if rsa is None:
            raise ConfigError(f"{opts.where}: DKIM needs dkim_key_file (RSA 2048, PEM); "
                              "ed25519 is only a second signature")
        signer = DKIMSigner(
            selector, domain, rsa, _read_key(opts, "dkim_ed25519_key_file"),
            opts.text("dkim_ed25519_selector"),
            rewrites_date_and_message_id=inner.rewrites_date_and_message_id,
        )
        try:  # fail at start-up, not at the first message
            signer.sign(b"From: a@example.org\r\nSubject: key check\r\n\r\nx\r\n")
        except SendPermanentError as exc:
            raise ConfigError(f"{opts.where}: DKIM key unusable: {exc}") from None
        return cls(inner, signer)

    def __repr__(self) -> str:
        return f"<DKIM d={self.signer.domain.decode()} s={self.signer.selector.decode()} " \
               f"{self.inner!r}>"

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]:
        signed = [dataclasses.replace(m, data=self.signer.sign(m.data)) for m in batch]
        originals = {id(s): m for s, m in zip(signed, batch, strict=True)}
        return [dataclasses.replace(r, message=originals.get(id(r.message), r.message))
                for r in self.inner.send(signed)]

    def send_stream(self, feed: Feed) -> None:
        """The inner sender's stream, every message signed as it is taken."""
        stream_via(self.inner, _SigningFeed(feed, self.signer))

    def __enter__(self) -> DKIMSigningSender:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        # reach the wrapped sender's extras (MemorySender.outbox, ...)
        return getattr(self.inner, name)


class _SigningFeed:
    """A feed whose messages come out signed; results go back under the originals."""

    def __init__(self, feed: Feed, signer: DKIMSigner) -> None:
        self.feed = feed
        self.signer = signer
        self.originals: dict[int, Outgoing] = {}

    def take(self) -> Outgoing | float | None:
        item = self.feed.take()
        if not isinstance(item, Outgoing):
            return item
        try:
            signed = dataclasses.replace(item, data=self.signer.sign(item.data))
        except SendPermanentError as exc:
            self.feed.failed(item, exc)
            return 0.0
        self.originals[id(signed)] = item
        return signed

    def done(self, message: Outgoing, results: list[SendResult]) -> None:
        original = self.originals.pop(id(message), message)
        self.feed.done(original, [dataclasses.replace(r, message=original) for r in results])

    def failed(self, message: Outgoing, error: Exception) -> None:
        self.feed.failed(self.originals.pop(id(message), message), error)
