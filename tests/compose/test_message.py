"""The multipart message, against EMAIL-STANDARDS.md section 1 and 2 (one message)."""

from __future__ import annotations

import email
import email.policy
import random
import re
import string
from email.utils import parsedate_to_datetime

import pytest

from pbtp_mailer.compose.message import MessageTemplate, Personal, check_header_value
from pbtp_mailer.errors import HeaderError

TOKEN_CHARS = string.ascii_letters + string.digits + "-_"


@pytest.fixture(scope="module")
def template(rendition, config):
    return MessageTemplate(rendition, config.newsletter)


def personal(token="tok123", **kw):
    base = "https://news.example.org/pbtp/u/"
    values = dict(email="ann@example.com", name="Ann Example",
                  unsubscribe_url=base + token,
                  unsubscribe_mailto=f"mailto:unsubscribe@example.org?subject=unsubscribe%20{token}")
    values.update(kw)
    return Personal(**values)


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_exactly_one_of_each_required_header(template):
    msg = parse(template.render(personal()))
    for name in ("Date", "From", "To", "Subject", "Message-ID", "MIME-Version",
                 "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post", "Reply-To"):
        assert len(msg.get_all(name) or []) == 1, name


def test_date_is_timezone_aware(template):
    msg = parse(template.render(personal()))
    assert parsedate_to_datetime(msg["Date"]).tzinfo is not None


def test_message_ids_unique_per_copy_and_on_our_domain(template, config):
    ids = {parse(template.render(personal()))["Message-ID"] for _ in range(200)}
    assert len(ids) == 200
    for mid in ids:
        assert re.fullmatch(r"<2024-03\.[0-9a-f]{24}@example\.org>", mid)
        assert len(mid) <= 500


def test_headers_ascii_lines_short_crlf_only(template):
    raw = template.render(personal(name="Zoë Ångström-Øster, PhD, a rather long display name"))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert all(b < 0x80 for b in raw), "message must be 7-bit clean"
    assert b"\r" not in raw.replace(b"\r\n", b"") and b"\n" not in raw.replace(b"\r\n", b"")
    for line in head.split(b"\r\n"):
        # List-Unsubscribe URIs cannot be folded inside; everything else folds at 78
        if not line.lstrip().startswith((b"<mailto:", b"List-Unsubscribe: <https")):
            assert len(line) <= 78, line
    for line in raw.split(b"\r\n"):
        assert len(line) <= 998
    msg = parse(raw)
    assert str(msg["To"]) == '"Zoë Ångström-Øster, PhD, a rather long display name" <ann@example.com>'


def test_mime_tree_and_encoding(template):
    msg = parse(template.render(personal()))
    parts = [p.get_content_type() for p in msg.walk()]
    assert parts == ["multipart/alternative", "text/plain", "text/html"]
    for part in list(msg.walk())[1:]:
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
    for part in msg.walk():
        assert part.defects == []


def test_qp_lines_at_most_76(template):
    raw = template.render(personal())
    body = raw.partition(b"\r\n\r\n")[2]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76


def test_non_ascii_subject_is_rfc2047(rendition, config):
    from dataclasses import replace

    r = replace(rendition, subject="Neuigkeiten: Übersicht für März — 2024")
    raw = MessageTemplate(r, config.newsletter).render(personal())
    subject_lines = re.search(rb"Subject: (.*?)\r\n(?! )", raw, re.S).group(0)
    assert b"=?utf-8?" in subject_lines
    for word in re.findall(rb"=\?[^?]+\?[qQbB]\?[^?]*\?=", subject_lines):
        assert len(word) <= 75
    assert parse(raw)["Subject"] == "Neuigkeiten: Übersicht für März — 2024"


def test_list_unsubscribe_one_https_then_mailto(template):
    msg = parse(template.render(personal(token="abcDEF_-09")))
    uris = re.findall(r"<([^>]+)>", msg["List-Unsubscribe"])
    assert uris == ["https://news.example.org/pbtp/u/abcDEF_-09",
                    "mailto:unsubscribe@example.org?subject=unsubscribe%20abcDEF_-09"]
    raw = template.render(personal())
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
    assert msg["List-Id"] == "Alliance PBTP News <pbtp-news.example.org>"


def test_personalised_values_survive_qp_for_many_random_tokens(template):
    """The QP trap: a soft line break must never split a token or URL."""
    rng = random.Random(7)
    for _ in range(300):
        token = "".join(rng.choice(TOKEN_CHARS) for _ in range(rng.randint(20, 90)))
        letters = string.ascii_letters + " éø'&<"
        name = "".join(rng.choice(letters) for _ in range(rng.randint(1, 40))).strip() or "X"
        addr = f"{token[:10].lower()}@example.com"
        msg = parse(template.render(personal(token=token, email=addr, name=name)))
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        url = f"https://news.example.org/pbtp/u/{token}"
        assert f"<{url}>" in text
        assert f'href="{url}"' in html
        assert addr in text and addr in html
        assert "@@PBTP:" not in text and "@@PBTP:" not in html


def test_slot_values_are_html_escaped(template):
    msg = parse(template.render(personal(email="a&b@example.com")))
    html = msg.get_body(("html",)).get_content()
    assert "a&amp;b@example.com" in html
    assert "a&b@example.com" in msg.get_body(("plain",)).get_content()


@pytest.mark.parametrize("bad", ["x\r\nBcc: e@x", "Ann\n", "A\x00nn", "=?UTF-8?Q?=0A?=",
                                 "=?UTF-8?Q?Ann=0D=0ABcc:_e@x?="])
def test_header_injection_is_refused(template, bad):
    with pytest.raises(HeaderError):
        template.render(personal(name=bad))
    with pytest.raises(HeaderError):
        check_header_value("Subject", bad)


def test_injection_through_address_or_token_refused(template):
    with pytest.raises(HeaderError):
        template.render(personal(email="ann@example.com\r\nBcc: x@example.com"))
    with pytest.raises(HeaderError):
        template.render(personal(unsubscribe_url="https://x/u/a\r\nBcc: x@example.com"))


def test_injection_through_config_refused(rendition, config):
    from dataclasses import replace

    nl = replace(config.newsletter, list_id="News <a.example.org>\r\nBcc: x@example.com")
    with pytest.raises(HeaderError):
        MessageTemplate(rendition, nl)


def test_non_ascii_address_refused_clearly(template):
    with pytest.raises(HeaderError, match="SMTPUTF8"):
        template.render(personal(email="zoë@example.com"))


def test_headers_within_gmail_limits(template):
    raw = template.render(personal())
    head = raw.partition(b"\r\n\r\n")[0]
    assert len(head) < 500_000
    assert head.count(b"\r\n") < 5000


def test_long_ascii_subject_folds_without_leading_space(rendition, config):
    from dataclasses import replace

    subject = "[TEST] PBTP E-Newsletter, March 2024: Spotlight on a new Alliance program " * 3
    r = replace(rendition, subject=subject.strip())
    raw = MessageTemplate(r, config.newsletter).render(personal())
    head = raw.partition(b"\r\n\r\n")[0]
    assert b"Subject: [TEST] PBTP" in head
    assert all(len(line) <= 78 for line in head.split(b"\r\n") if not line.startswith(b"List-Uns"))
    assert parse(raw)["Subject"] == subject.strip()


def test_no_line_starts_with_a_dot_so_smtp_needs_no_stuffing(rendition, config):
    """Leading dots are QP-encoded (=2E): the dispatcher marks its messages dot_safe."""
    from dataclasses import replace

    rng = random.Random(11)
    text = "\n".join("." * rng.randint(1, 3) + "".join(rng.choice(".ab é") for _ in range(
        rng.randint(0, 160))) for _ in range(200))
    r = replace(rendition, text=text + "\n@@PBTP:name@@\n", html=rendition.html)
    template = MessageTemplate(r, config.newsletter)
    for name in (".leading dot", "a", "..", ". " * 40):
        raw = template.render(Personal(email="a@example.com", name=name,
                                       unsubscribe_url="https://x.example.org/u/t"))
        assert b"\r\n." not in raw and not raw.startswith(b".")
        body = raw.partition(b"\r\n\r\n")[2]
        assert max(len(line) for line in body.split(b"\r\n")) <= 76
        msg = parse(raw)
        got = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
        assert got == text + f"\n{name}\n"


def test_optional_feedback_id_header(rendition, config):
    from dataclasses import replace

    nl = replace(config.newsletter, feedback_id="march:news:newsletter:pbtpnews")
    msg = parse(MessageTemplate(rendition, nl).render(personal()))
    assert msg.get_all("Feedback-ID") == ["march:news:newsletter:pbtpnews"]
    assert parse(MessageTemplate(rendition, config.newsletter).render(personal()))[
        "Feedback-ID"] is None


@pytest.mark.parametrize("name", [
    None, "", "Reader 5", "Dr. Ada Lovelace", "Smith, John", 'Ann "Nan" Lee', "O'Brien",
    "Zoë Ångström", "=?utf-8?q?Eve?=", "x" * 40, "y" * 70, "a@b", "(comment)", "Ann <x>"])
@pytest.mark.parametrize("email", ["reader@example.net", "first.last+tag@sub.example.org"])
def test_fast_headers_equal_the_careful_ones(template, name, email):
    """The common copy takes a short path (no folding, one check); any copy must come out
    byte for byte as the careful path (every check, Python's folder) writes it."""
    msgid = "<fixed@example.org>"
    p = personal(email=email, name=name, message_id=msgid,
                 date=parsedate_to_datetime("Fri, 01 Mar 2024 14:00:00 +0000"))
    try:
        careful = template._careful_headers(p, msgid)
    except HeaderError:
        with pytest.raises(HeaderError):
            template.headers(p)
        return
    assert template.headers(p) == careful
