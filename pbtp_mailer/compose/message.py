"""A composed issue as a message template: encoded once, personalised in microseconds.

Building an ``EmailMessage`` per recipient costs 4-7 ms (pure-Python
quoted-printable). Instead every static stretch of the text and HTML parts
is encoded once, each ending on a line break (hard, or a QP soft break
``=\\r\\n``), so a per-recipient value is encoded on its own and joined
between them. A QP soft break can therefore never fall inside a token (a
value spliced into already-encoded text could straddle one and reach the
reader as ``tok=\r\nen``), and the result parses back to exactly the
composed text with the values in place (tests/compose/test_message.py).

Output: ``multipart/alternative`` (text/plain first, text/html last),
UTF-8, quoted-printable, CRLF, lines <= 76 octets in bodies and headers
folded at 78. Header values are checked for CR, LF and NUL ourselves:
Python 3.11.7 does not refuse them when serialising.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.quoprimime
import html
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import format_datetime, formataddr

from pbtp_mailer.compose.layouts import SLOT_PREFIX, SLOT_SUFFIX
from pbtp_mailer.compose.pipeline import Rendition
from pbtp_mailer.config import Newsletter
from pbtp_mailer.errors import HeaderError

__all__ = ["Personal", "MessageTemplate", "new_message_id", "check_header_value", "SLOT_RE"]

SLOT_RE = re.compile(re.escape(SLOT_PREFIX) + r"([A-Za-z0-9_.-]+)" + re.escape(SLOT_SUFFIX))
_BAD_HEADER_CHARS = re.compile(r"[\r\n\x00]")
_QP_SAFE = re.compile(r"^[\x21-\x2d\x2f-\x3c\x3e-\x7e](?:[\x20-\x3c\x3e-\x7e]{0,71}[\x21-\x3c\x3e-\x7e])?$")
#: printable ASCII with no space and no '=' (a URL, a token): QP is itself, cut in lines
_QP_WORD = re.compile(r"^[\x21-\x3c\x3e-\x7e]+$")
_POLICY = email.policy.SMTP.clone(max_line_length=78)
_CRLF = b"\r\n"


def check_header_value(name: str, value: str) -> str:
    """Refuse CR, LF and NUL (header injection), whatever Python's version does."""
    if _BAD_HEADER_CHARS.search(value):
        raise HeaderError(f"header {name}: value contains CR, LF or NUL: {value[:60]!r}")
    if "=?" in value and "?=" in value:
        # encoded-words could smuggle a line break past us once decoded
        from email.header import decode_header

        try:
            decoded = "".join(
                p.decode(c or "ascii", "replace") if isinstance(p, bytes) else p
                for p, c in decode_header(value)
            )
        except Exception:  # noqa: BLE001 - malformed encoded words: refuse them
            raise HeaderError(f"header {name}: malformed encoded-word in {value[:60]!r}") from None
        if _BAD_HEADER_CHARS.search(decoded):
            raise HeaderError(f"header {name}: encoded value hides CR, LF or NUL: {value[:60]!r}")
    return value


def _fold(name: str, value: str) -> bytes:
    check_header_value(name, value)
    if name in _UNSTRUCTURED and value.isascii():
        return _fold_ascii(name, value)
    return _POLICY.header_factory(name, value).fold(policy=_POLICY).encode("ascii")


_UNSTRUCTURED = frozenset({"Subject", "List-Id", "X-PBTP-Test-Send"})


def _fold_ascii(name: str, value: str) -> bytes:
    """Fold printable ASCII at spaces, 78 columns, never before the first word
    (Python's folder may break right after 'Subject:', which some readers show
    as a leading space)."""
    lines: list[str] = []
    line = f"{name}:"
    for word in value.split(" "):
        if len(line) + 1 + len(word) > 78 and line.strip() not in (f"{name}:", ""):
            lines.append(line)
            line = ""
        line += f" {word}"
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _qp(text: str) -> bytes:
    """Quoted-printable of UTF-8 text, CRLF line ends, lines <= 76, and no line starting
    with "." (encoded "=2E", hence the 74 + 2 budget): SMTP then needs no dot-stuffing."""
    latin = text.replace("\r\n", "\n").encode("utf-8").decode("latin-1")
    out = email.quoprimime.body_encode(latin, maxlinelen=74, eol="\r\n").encode("ascii")
    if out[:1] == b".":
        out = b"=2E" + out[1:]
    return out.replace(b"\r\n.", b"\r\n=2E")


def _qp_piece(text: str) -> bytes:
    """Encode a piece so that whatever follows starts at column 0."""
    if not text:
        return b""
    out = _qp(text)
    return out if out.endswith(_CRLF) else out + b"=\r\n"


def _qp_value(value: str) -> bytes:
    if _QP_SAFE.match(value):  # fast path: short printable ASCII, no '=', no leading '.'
        return value.encode("ascii") + b"=\r\n"
    if _QP_WORD.match(value):  # a long URL: soft breaks every 73 characters
        raw = value.encode("ascii")
        if raw[:1] != b"." and b"." not in raw[73::73]:  # no line would start with "."
            return b"=\r\n".join([raw[i:i + 73] for i in range(0, len(raw), 73)]) + b"=\r\n"
    return _qp_piece(value)


def new_message_id(issue_id: str, domain: str) -> str:
    return f"<{issue_id}.{secrets.token_hex(12)}@{domain}>"


@dataclass(slots=True)  # not frozen: one per message, and a frozen __init__ costs 4x
class Personal:
    """The per-recipient values of one copy (treat as read-only)."""

    email: str
    name: str | None = None
    unsubscribe_url: str = ""
    unsubscribe_mailto: str | None = None
    attrs: Mapping[str, str] = field(default_factory=dict)
    message_id: str | None = None
    date: dt.datetime | None = None
    preferences_url: str = ""


class _Part:
    """One body part split around its slots: [bytes, slot, bytes, slot, ..., bytes]."""

    __slots__ = ("statics", "slots", "escape")

    def __init__(self, source: str, escape: bool) -> None:
        pieces = SLOT_RE.split(source)
        self.statics = [_qp_piece(p) for p in pieces[0::2]]
        self.slots = pieces[1::2]
        self.escape = escape


#: characters html.escape changes; a value without them is its own escaped form
_HTML_SPECIAL = re.compile(r"[&<>\"']")
#: a display name formataddr() writes as is (printable ASCII, no specials, no encoded-word)
_PLAIN_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]{1,60}")
#: what makes a header value need the careful checks (CR, LF, NUL, encoded-words)
_HEADER_CAREFUL = re.compile(r"[\r\n\x00]|=\?")


def _list_unsubscribe(url: str, mailto: str | None) -> bytes:
    """``List-Unsubscribe:`` (values already checked): the https URL first (RFC 8058), then
    the mailto one, on a continuation line when both do not fit in 78 columns."""
    unsub = f"<{url}>"
    if mailto:
        sep = ", " if 18 + len(unsub) + 4 + len(mailto) <= 78 else ",\r\n "
        unsub = f"{unsub}{sep}<{mailto}>"
    return f"List-Unsubscribe: {unsub}\r\n".encode("ascii")


class _Body:
    """Both parts as one run: ``statics[0] value[0] statics[1] ... statics[-1]``, where
    ``keys[i]`` names the value (slot, escaped for HTML or not). A message is the
    headers plus this list with each value's encoding put in its place."""

    __slots__ = ("statics", "keys", "shared")

    def __init__(self, parts: list[tuple[bytes, _Part]], close: bytes) -> None:
        statics: list[bytes] = []
        keys: list[tuple[str, bool]] = []
        pending = b""
        for opening, part in parts:
            pending += opening + part.statics[0]
            for slot, static in zip(part.slots, part.statics[1:], strict=True):
                statics.append(pending)
                keys.append((slot, part.escape))
                pending = static
        statics.append(pending + close)
        self.statics = statics
        self.keys = keys
        #: the distinct (slot, escaped) values, each encoded once per message
        self.shared = tuple(dict.fromkeys(keys))

    def render(self, head: bytes, values: Mapping[str, str]) -> bytes:
        encoded: dict[tuple[str, bool], bytes] = {}
        for key in self.shared:
            slot, escape = key
            value = values[slot]
            if escape and _HTML_SPECIAL.search(value):
                encoded[key] = _qp_value(html.escape(value))
            elif escape and (slot, False) in encoded:
                encoded[key] = encoded[(slot, False)]
            else:
                encoded[key] = _qp_value(value)
        out = [head]
        statics = self.statics
        for i, key in enumerate(self.keys):
            out.append(statics[i])
            out.append(encoded[key])
        out.append(statics[-1])
        return b"".join(out)


class MessageTemplate:
    """Everything of an issue's message that does not depend on the recipient."""

    def __init__(self, rendition: Rendition, newsletter: Newsletter, *,
                 extra_headers: Mapping[str, str] | None = None) -> None:
        self.rendition = rendition
        self.newsletter = newsletter
        self.domain = newsletter.message_id_domain
        self.text = _Part(rendition.text, escape=False)
        self.html = _Part(rendition.html, escape=True)
        self.slot_names = frozenset(self.text.slots) | frozenset(self.html.slots)
        boundary = "=_pbtp_" + secrets.token_hex(12)
        while boundary in rendition.text or boundary in rendition.html:  # pragma: no cover
            boundary = "=_pbtp_" + secrets.token_hex(12)
        self.boundary = boundary

        head = [_fold("From", newsletter.from_addr)]
        if newsletter.reply_to:
            head.append(_fold("Reply-To", newsletter.reply_to))
        head.append(_fold("Subject", rendition.subject))
        head.append(b"MIME-Version: 1.0\r\n")
        head.append(_fold("List-Id", newsletter.list_id))
        if newsletter.feedback_id:  # Gmail's Feedback Loop; the same value on every copy
            head.append(_fold("Feedback-ID", newsletter.feedback_id))
        for name, value in (extra_headers or {}).items():
            head.append(_fold(name, value))
        head.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        self._static_head = b"".join(head)
        self._content_type = _fold("Content-Type", f'multipart/alternative; boundary="{boundary}"')
        part_head = (b'Content-Type: text/%s; charset="utf-8"\r\n'
                     b"Content-Transfer-Encoding: quoted-printable\r\n\r\n")
        b = boundary.encode("ascii")
        self._open_text = b"\r\nThis is a multi-part message in MIME format.\r\n\r\n--" + b + \
            b"\r\n" + part_head % b"plain"
        self._open_html = b"\r\n--" + b + b"\r\n" + part_head % b"html"
        self._close = b"\r\n--" + b + b"--\r\n"
        self._body = _Body([(self._open_text, self.text), (self._open_html, self.html)],
                           self._close)
        self._date: tuple[object, bytes] = (None, b"")

    def values(self, p: Personal) -> dict[str, str]:
        values = {"email": p.email, "name": p.name or "", "unsubscribe_url": p.unsubscribe_url,
                  "preferences_url": p.preferences_url or p.unsubscribe_url}
        for key, value in p.attrs.items():
            values[f"attr.{key}"] = value
        missing = self.slot_names - values.keys()
        for slot in missing:  # an attribute this subscriber lacks renders empty
            if slot.startswith("attr."):
                values[slot] = ""
            else:
                raise HeaderError(f"layout uses unknown per-recipient value '{slot}'")
        return values

    def headers(self, p: Personal) -> bytes:
        msgid = p.message_id or new_message_id(self.rendition.issue_id, self.domain)
        name, email, url, mailto = p.name, p.email, p.unsubscribe_url, p.unsubscribe_mailto
        if (email.isascii() and (not name or _PLAIN_NAME.fullmatch(name))
                and not _HEADER_CAREFUL.search(f"{email} {name} {msgid} {url} {mailto}")):
            to = f"{name} <{email}>" if name else email
            if len(to) <= 74:  # the common copy: nothing to fold, nothing to check further
                return b"".join((self._date_line(p.date), (
                    f"To: {to}\r\nMessage-ID: {msgid}\r\n").encode("ascii"), self._static_head,
                    _list_unsubscribe(url, mailto), self._content_type))
        return self._careful_headers(p, msgid)

    def _date_line(self, date: dt.datetime | None) -> bytes:
        """``Date:`` for ``date`` (now when None), to the second: formatted once per second
        of the run, not per message."""
        date = date or dt.datetime.now(dt.UTC)
        second = (date.timestamp() // 1, date.utcoffset())
        last, line = self._date
        if second != last:
            line = f"Date: {format_datetime(date)}\r\n".encode("ascii")
            self._date = (second, line)
        return line

    def _careful_headers(self, p: Personal, msgid: str) -> bytes:
        """Every check, and folding, for a copy the fast path does not take."""
        if not p.email.isascii():
            raise HeaderError(f"{p.email}: non-ASCII addresses need SMTPUTF8, not supported")
        check_header_value("To", p.email)
        if p.name:
            check_header_value("To", p.name)
            to = formataddr((p.name, p.email)) if p.name.isascii() else ""
            if to and len(to) <= 74:
                to_line = f"To: {to}\r\n".encode("ascii")
            else:
                try:
                    address = Address(display_name=p.name, addr_spec=p.email)
                except (ValueError, IndexError, HeaderParseError) as exc:
                    raise HeaderError(f"{p.email}: cannot be used in To: {exc}") from None
                to_line = _POLICY.header_factory("To", address).fold(policy=_POLICY).encode("ascii")
        else:
            to_line = f"To: {p.email}\r\n".encode("ascii")
        check_header_value("Message-ID", msgid)
        check_header_value("List-Unsubscribe", f"<{p.unsubscribe_url}>")
        if p.unsubscribe_mailto:
            check_header_value("List-Unsubscribe", p.unsubscribe_mailto)
        return (self._date_line(p.date) + to_line
                + f"Message-ID: {msgid}\r\n".encode("ascii") + self._static_head
                + _list_unsubscribe(p.unsubscribe_url, p.unsubscribe_mailto) + self._content_type)

    def render(self, p: Personal) -> bytes:
        """The complete RFC 5322 message for one recipient."""
        return self._body.render(self.headers(p), self.values(p))
