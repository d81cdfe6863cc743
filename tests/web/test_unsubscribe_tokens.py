"""HMAC unsubscribe tokens: opaque, short, URL-safe, unforgeable, never expiring."""

from __future__ import annotations

import re

import pytest

from pbtp_mailer.errors import TokenError
from pbtp_mailer.tokens import make_token, read_token, unsubscribe_urls

SECRET = b"s" * 32


def test_round_trip_and_shape() -> None:
    for sid, lid in [(1, 1), (123456, 7), (2**32 - 1, 2**32 - 1)]:
        tok = make_token(SECRET, sid, lid)
        assert re.fullmatch(r"[A-Za-z0-9_-]{32}", tok)
        assert read_token(SECRET, tok) == (sid, lid)
    assert make_token(SECRET, 1, 2) != make_token(SECRET, 2, 1)
    assert make_token(SECRET, 1, 2) == make_token(SECRET, 1, 2)  # deterministic, no expiry


@pytest.mark.parametrize("bad", [
    "", "x", "not a token", "A" * 32, "A" * 33, "A" * 31, "é" * 32, "+" * 32, "=" * 32,
])
def test_garbage_is_refused(bad: str) -> None:
    with pytest.raises(TokenError):
        read_token(SECRET, bad)


def test_forged_truncated_and_other_secret() -> None:
    tok = make_token(SECRET, 42, 3)
    with pytest.raises(TokenError, match="malformed unsubscribe token"):
        read_token(SECRET, tok[:-1])
    flipped = tok[:-1] + ("A" if tok[-1] != "A" else "B")
    with pytest.raises(TokenError, match="invalid unsubscribe token"):
        read_token(SECRET, flipped)
    with pytest.raises(TokenError, match="invalid unsubscribe token"):
        read_token(b"another secret, 32 bytes long!!", tok)
    # swapping in other ids while keeping the MAC does not work
    other = make_token(SECRET, 43, 3)
    with pytest.raises(TokenError):
        read_token(SECRET, other[:11] + tok[11:])


def test_unsubscribe_urls(web_config) -> None:
    tok = make_token(SECRET, 5, 6)
    https, mailto = unsubscribe_urls(web_config.newsletter, tok)
    assert https == f"https://news.example.org/pbtp/u/{tok}"
    assert mailto == f"mailto:unsubscribe@example.org?subject=unsubscribe%20{tok}"


def test_unsubscribe_urls_without_mailto(web_config) -> None:
    from dataclasses import replace

    nl = replace(web_config.newsletter, unsubscribe_mailto=None,
                 unsubscribe_base_url="https://x.example.org/u")
    assert unsubscribe_urls(nl, "T" * 32) == ("https://x.example.org/u/" + "T" * 32, None)


def test_compare_digest_is_used() -> None:
    import inspect

    import pbtp_mailer.tokens as t

    assert "hmac.compare_digest" in inspect.getsource(t.read_token)


def test_tokens_reveal_no_ids():
    """Consecutive subscribers get unrelated tokens: the ids are not readable in them."""
    import base64

    from pbtp_mailer.tokens import make_token, read_token

    secret = b"s" * 32
    tokens = [make_token(secret, sid, 7) for sid in range(1, 200)]
    for sid, tok in enumerate(tokens, 1):
        raw = base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4))
        assert sid.to_bytes(4, "big") not in raw and (7).to_bytes(4, "big") not in raw
        assert read_token(secret, tok) == (sid, 7)
    assert len({t[:8] for t in tokens}) == len(tokens)


@pytest.mark.parametrize("length", [1, 16, 32, 63, 64, 65, 100, 200])
def test_pre_keyed_hmac_is_hmac_sha256(length):
    """Tokens use HMAC-SHA256 from hashes keyed once per secret (speed); it must be the
    standard HMAC for every key length, short, block-sized and longer than a block."""
    import hashlib
    import hmac as std_hmac

    from pbtp_mailer.tokens import _hmac

    secret = bytes((i * 37 + length) % 256 for i in range(length))
    for data in (b"", b"pbtp-mailer/unsubscribe/v1\0" + b"\x00\x00\x30\x39\x00\x00\x00\x01",
                 b"x" * 200):
        assert _hmac(secret, data) == std_hmac.new(secret, data, hashlib.sha256).digest()
