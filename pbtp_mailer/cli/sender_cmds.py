"""CLI commands: sender_cmds."""

from __future__ import annotations

COMMANDS: list = []
