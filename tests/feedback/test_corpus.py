"""The corpus: real-world-shaped DSNs, ARF reports and look-alikes, each with its expected result."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from pbtp_mailer.feedback import Ignored
from pbtp_mailer.feedback.mail import Unrecognised, parse_message
from pbtp_mailer.feedback.verp import Verp

CORPUS = Path(__file__).parent / "corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
VERP = Verp.from_secret(b"corpus-secret-0123456789abcdef", "bounces", "bounce.example.org")
NOW = dt.datetime(2024, 3, 2, tzinfo=dt.UTC)


def test_corpus_is_complete():
    names = sorted(p.name for p in CORPUS.glob("*.eml"))
    assert names == sorted(EXPECTED) and len(names) >= 15


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample(name):
    result = parse_message((CORPUS / name).read_bytes(), verp=VERP, now=NOW)
    want = EXPECTED[name]
    if want == "ignored":
        assert isinstance(result, Ignored), result
    elif want == "unrecognised":
        assert isinstance(result, Unrecognised), result
    else:
        assert isinstance(result, list), result
        got = [dict(email=e.email, kind=e.kind, status=e.status, delivery_id=e.delivery_id,
                    message_id=e.message_id) for e in result]
        assert got == want


def test_same_report_gives_the_same_event_ids():
    data = (CORPUS / "13-multi-recipient-dsn.eml").read_bytes()
    a = parse_message(data, verp=VERP, now=NOW)
    b = parse_message(data, verp=VERP, now=NOW + dt.timedelta(days=1))
    assert [e.event_id for e in a] == [e.event_id for e in b]
    assert len({e.event_id for e in a}) == 2


def test_forged_verp_token_is_not_trusted():
    data = (CORPUS / "15-verp-unreadable-bounce.eml").read_bytes()
    token = VERP.address(555).split("+")[1].split("@")[0]
    forged = data.replace(token.encode(), b"556-" + token.split("-")[1].encode())
    assert isinstance(parse_message(forged, verp=VERP, now=NOW), Unrecognised)


@pytest.mark.parametrize("junk", [b"", b"\x00\xff\xfe garbage", b"Content-Type: multipart/report;"
                                  b" report-type=delivery-status; boundary=x\r\n\r\n--x\r\n"])
def test_junk_never_raises(junk):
    assert isinstance(parse_message(junk, verp=VERP, now=NOW), Unrecognised | Ignored)


def test_verp_roundtrip_and_case_folding():
    addr = VERP.address(987654)
    assert VERP.delivery_id(addr) == 987654
    assert VERP.delivery_id(addr.upper()) == 987654
    assert VERP.delivery_id(addr.replace("bounce.example.org", "other.example.org")) is None
    other = Verp.from_secret(b"another-secret-0123456789abcdef", "bounces", "bounce.example.org")
    assert other.delivery_id(addr) is None
