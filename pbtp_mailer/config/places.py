"""Where each table and key of a TOML file stands, for located errors.

``tomllib`` keeps no positions, so a small scan of the text finds the
``[table]`` headers and the ``key =`` lines: good enough to point a person at
the right line (``pbtp-mailer.toml:21:1``). Strings and multi-line arrays are
skipped so that their contents are never taken for keys.
"""

from __future__ import annotations

import re

__all__ = ["Places", "toml_places", "Locator"]

Key = tuple[str, ...]
Places = dict[Key, tuple[int, int]]

_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''
_DOTTED = rf"(?:{_BARE}|{_QUOTED})(?:\s*\.\s*(?:{_BARE}|{_QUOTED}))*"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?")
_KEY = re.compile(rf"^\s*({_DOTTED})\s*=")
_PART = re.compile(rf"{_BARE}|{_QUOTED}")


def _split(dotted: str) -> Key:
    parts = []
    for m in _PART.finditer(dotted):
        token = m.group(0)
        parts.append(token[1:-1] if token[0] in "\"'" else token)
    return tuple(parts)


def _depth_change(line: str, quote: str | None) -> tuple[int, str | None]:
    """Net ``[``/``{`` nesting of one line outside strings, and an open ``\"\"\"``/``'''``."""
    depth, i = 0, 0
    while i < len(line):
        if quote:
            end = line.find(quote, i)
            if end < 0:
                return depth, quote
            i, quote = end + 3, None
            continue
        c = line[i]
        if c == "#":
            break
        if line.startswith(('"""', "'''"), i):
            quote, i = line[i:i + 3], i + 3
            continue
        if c in "\"'":
            m = re.compile(_QUOTED).match(line, i)
            i = m.end() if m else len(line)
            continue
        depth += (c in "[{") - (c in "]}")
        i += 1
    return depth, quote


def toml_places(text: str) -> Places:
    """``{("newsletter",): (line, col), ("newsletter", "from"): (line, col), ...}`` (1-based)."""
    places: Places = {}
    table: Key = ()
    depth, quote = 0, None
    for number, line in enumerate(text.splitlines(), 1):
        if depth == 0 and quote is None:
            header = _HEADER.match(line)
            if header:
                table = _split(header.group(2))
                if header.group(1) == "[":
                    places.setdefault(table, (number, line.index("[") + 1))
                continue
            key = _KEY.match(line)
            if key:
                col = len(line) - len(line.lstrip()) + 1
                places.setdefault((*table, *_split(key.group(1))), (number, col))
                line = line[key.end():]
        change, quote = _depth_change(line, quote)
        depth = max(0, depth + change)
    return places


class Locator:
    """``FILE:LINE:COL`` of a table or key (its nearest known parent), else ``FILE``."""

    def __init__(self, file: object | None, places: Places) -> None:
        self.file = str(file) if file else "config"
        self.places = places

    def __call__(self, *key: str) -> str:
        k = tuple(key)
        while k and k not in self.places:
            k = k[:-1]
        if not k:
            return self.file
        line, col = self.places[k]
        return f"{self.file}:{line}:{col}"
