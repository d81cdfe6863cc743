"""What every webhook endpoint shares: the request as read, and the one way to refuse it."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

__all__ = ["Rejected", "Request", "read_request", "parse_json", "parse_time"]


class Rejected(Exception):
    """Refuse the request with ``status`` (4xx); ``reason`` is safe to show (no secrets)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Request:
    method: str
    headers: dict[str, str]  # lower-case names
    body: bytes


def read_request(environ: dict[str, Any], max_bytes: int) -> Request:
    """The request, its body read only when it fits in ``max_bytes``."""
    method = str(environ.get("REQUEST_METHOD", "GET")).upper()
    if method != "POST":
        raise Rejected(405, "POST only")
    headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items()
               if k.startswith("HTTP_")}
    for k in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(k):
            headers[k.replace("_", "-").lower()] = str(environ[k])
    try:
        length = int(headers.get("content-length", "") or -1)
    except ValueError:
        raise Rejected(400, "bad Content-Length") from None
    if length > max_bytes:
        raise Rejected(413, f"body larger than {max_bytes} bytes")
    stream = environ["wsgi.input"]
    body = stream.read(length) if length >= 0 else stream.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise Rejected(413, f"body larger than {max_bytes} bytes")
    return Request(method, headers, body)


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Rejected(400, "body is not JSON") from None


def parse_time(value: Any, what: str) -> dt.datetime:
    """An ISO 8601 string or a Unix timestamp, as an aware UTC datetime."""
    try:
        if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
            return dt.datetime.fromtimestamp(float(value), dt.UTC)
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise Rejected(400, f"{what}: not a time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def field(obj: Any, *path: str, required: bool = True) -> Any:
    """``obj[path[0]][path[1]]...`` or a 400 naming the missing field."""
    cur = obj
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            if not required:
                return None
            raise Rejected(400, f"missing field {'.'.join(path)}")
        cur = cur[p]
    return cur
