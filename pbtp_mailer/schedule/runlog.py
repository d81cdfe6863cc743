"""Structured run log for cron: one ``key=value`` line per event, appended.

    2026-11-24T23:00:00Z issue=2024-03 list=members event=sent sent=20 failed=0 deferred=0

Each line is one ``write`` on a descriptor opened with ``O_APPEND`` just for
it, so lines from overlapping processes never interleave, and logrotate
works with either ``create`` (the next line opens the new file) or
``copytruncate`` (appends land at the new end, no hole). Values with spaces
or quotes are double-quoted. Subscriber data never goes here beyond an
address inside a server's error text.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from pathlib import Path

__all__ = ["RunLog", "format_line"]

_PLAIN = re.compile(r"^[A-Za-z0-9_.:/@+,<>-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _value(value: object) -> str:
    text = _CONTROL.sub(" ", str(value))
    if text and _PLAIN.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_line(when: dt.datetime, event: str, **fields: object) -> str:
    """``TIME [issue=..] [list=..] event=EVENT key=value ...`` (None values left out)."""
    stamp = when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    parts = [stamp]
    for key in ("issue", "list"):
        if fields.get(key) is not None:
            parts.append(f"{key}={_value(fields.pop(key))}")
        else:
            fields.pop(key, None)
    parts.append(f"event={_value(event)}")
    parts += [f"{k}={_value(v)}" for k, v in fields.items() if v is not None]
    return " ".join(parts)


class RunLog:
    """Append event lines to ``path``; with no path, a log that writes nothing."""

    def __init__(self, path: str | os.PathLike[str] | None,
                 clock: Callable[[], dt.datetime]) -> None:
        self.path = Path(path) if path is not None else None
        self.clock = clock
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def event(self, event: str, **fields: object) -> str:
        line = format_line(self.clock(), event, **fields)
        if self.path is not None:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, (line + "\n").encode("utf-8"))
            finally:
                os.close(fd)
        return line
