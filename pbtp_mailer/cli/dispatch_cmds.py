"""CLI commands: dispatch_cmds."""

from __future__ import annotations

COMMANDS: list = []
