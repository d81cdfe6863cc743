"""Terminal output that user data cannot drive.

Names, addresses, subjects and server replies come from subscribers, CSV
files and remote servers; an ESC or a bidi override in them would move the
cursor, recolour or hide lines on the operator's terminal. Every line the CLI
prints goes through ``shown``: control characters (C0 but tab and newline,
DEL, C1) and the invisible direction marks become visible escapes.
"""

from __future__ import annotations

import re

import click

__all__ = ["echo", "shown"]

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: str) -> str:
    """``text`` with every character that could drive a terminal written as an escape."""
    return _UNSAFE.sub(_escape, text)


def echo(message: object = "", *, err: bool = False, nl: bool = True) -> None:
    """``click.echo`` for text that may hold user data."""
    click.echo(shown(str(message)), err=err, nl=nl)
