"""The value types of pbtp-mailer.toml, declared once for pydantic.

Many settings end up in message headers (From, Reply-To, List-Id,
Message-ID, List-Unsubscribe), so each such type refuses what would change
a header's shape: CR/LF anywhere, a second mailbox in ``from``, ``>`` or
spaces in a domain, quotes or brackets in a URL. Numbers carry ranges and
refuse ``inf`` and ``nan``.
"""

from __future__ import annotations

import math
import re
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import getaddresses, parseaddr
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, StrictBool, StrictStr

__all__ = [
    "Line", "HttpUrl", "Mailbox", "BareAddress", "Domain", "ListId", "FeedbackId",
    "TimeZone", "Direction", "Language", "finite", "count", "Flag",
    "Port", "Value",
]

_BREAKS = re.compile(r"[\r\n\0\u2028\u2029\x85]")
_DOMAIN = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                     r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
#: characters that end or split a URL inside a header or an HTML attribute
_URL_BAD = re.compile(r"[\s\"'<>\\^`{|}\x00-\x1f\x7f]")
_LIST_ID = re.compile(r"^(?:[^<>\"]*\S\s+)?<([^<>\s]+)>$")


def _shown(value: str) -> str:
    """A value quoted for an error line, cut short: a message is one line, not the value."""
    return repr(value if len(value) <= 80 else value[:77] + "...")


def _line(value: str) -> str:
    if _BREAKS.search(value):
        raise ValueError("must not contain CR, LF or NUL")
    return value


def _http_url(value: str) -> str:
    if not value.startswith(("https://", "http://")) or len(value) < 9:
        raise ValueError(f"must be an http(s) URL, got {_shown(value)}")
    bad = _URL_BAD.search(value)
    if bad:
        raise ValueError(f"must be a URL without spaces, quotes or brackets, got {_shown(value)}")
    return value


def _mailbox(value: str) -> str:
    boxes = getaddresses([value])
    if len(boxes) != 1 or value.count("@") != 1:
        raise ValueError(f"must be one e-mail address, got {_shown(value)}")
    name, addr = parseaddr(value)
    if not addr or "@" not in addr or any(c in addr for c in " <>,;\"()"):
        raise ValueError(f"must be an e-mail address, got {_shown(value)}")
    try:
        local, domain = addr.rsplit("@", 1)
        Address(display_name=name, username=local, domain=domain)
    except (ValueError, IndexError, HeaderParseError) as exc:
        raise ValueError(f"is not a valid address: {exc}") from None
    if not _DOMAIN.match(domain):
        raise ValueError(f"has an invalid domain {domain!r}")
    return value


def _bare_address(value: str) -> str:
    _mailbox(value)
    if parseaddr(value)[1] != value.strip():
        raise ValueError(f"must be a bare address such as 'unsubscribe@example.org', got {_shown(value)}")
    return value


def _domain(value: str) -> str:
    if not _DOMAIN.match(value):
        raise ValueError(f"must be a domain name such as 'example.org', got {_shown(value)}")
    return value


def _list_id(value: str) -> str:
    m = _LIST_ID.match(value)
    if not m or "." not in m.group(1) or not _DOMAIN.match(m.group(1).replace("_", "-")):
        raise ValueError("must look like 'Name <list.example.org>'")
    return value


def _feedback_id(value: str) -> str:
    parts = value.split(":")
    if not (2 <= len(parts) <= 4 and all(p and " " not in p for p in parts)
            and 5 <= len(parts[-1]) <= 15):
        raise ValueError("must look like 'campaign:list:type:SenderId' (colon-separated, "
                         f"SenderId of 5-15 characters), got {_shown(value)}")
    return value


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
        raise ValueError(f"{value[:80]!r} is not an IANA time zone") from None
    return value


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value


Line = Annotated[StrictStr, AfterValidator(_line)]
HttpUrl = Annotated[Line, AfterValidator(_http_url)]
Mailbox = Annotated[Line, AfterValidator(_mailbox)]
BareAddress = Annotated[Line, AfterValidator(_bare_address)]
Domain = Annotated[Line, AfterValidator(_domain)]
ListId = Annotated[Line, AfterValidator(_list_id)]
FeedbackId = Annotated[Line, AfterValidator(_feedback_id)]
TimeZone = Annotated[Line, AfterValidator(_time_zone)]
Direction = Annotated[Line, Field(pattern=r"^(ltr|rtl)$")]
Language = Annotated[Line, Field(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
Flag = StrictBool


def finite(*, gt: float | None = None, ge: float | None = None, le: float) -> Any:
    """Metadata for ``Annotated[float, finite(...)]``: a finite number in a range."""
    return Field(strict=True, allow_inf_nan=False, gt=gt, ge=ge, le=le)


def count(*, ge: int, le: int) -> Any:
    """Metadata for ``Annotated[int, count(...)]``: TOML ``5``, never ``5.0`` or ``true``."""
    return Field(strict=True, ge=ge, le=le)


#: an option that a sender URL may also give as text ("587"): lax, but never a bool
Port = Annotated[int, BeforeValidator(_not_bool), Field(ge=1, le=65535)]


def _no_breaks_deep(value: Any) -> Any:
    stack = [value]
    while stack:  # iterative: TOML arrays may nest deeper than Python's recursion limit
        item = stack.pop()
        if isinstance(item, str):
            _line(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValueError("must be a finite number")
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
    return value


#: any other option value: checked for CR/LF/NUL and non-finite numbers, nothing else
Value = Annotated[Any, AfterValidator(_no_breaks_deep)]
