"""Terminal output that user data cannot drive.

Names, addresses, subjects and server replies come from subscribers, CSV
files and remote servers; an ESC or a bidi override in them would move the
cursor, recolour or hide lines on the operator's terminal. Every line the CLI
prints goes through ``shown``: control characters (C0 but tab and newline,
DEL, C1) and the invisible direction marks become visible escapes.
``echo_json`` does the same for JSON text with ``\\uXXXX`` escapes, so the
output stays valid JSON that decodes to the same values.
"""

from __future__ import annotations

import re

import click

__all__ = ["echo", "echo_json", "shown"]

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


def echo_json(text: str, *, err: bool = False) -> None:
    """``click.echo`` for JSON text: unsafe characters (only ever inside strings) as ``\\uXXXX``."""
    click.echo(_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text), err=err)
