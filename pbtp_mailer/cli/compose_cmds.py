"""CLI commands: compose_cmds."""

from __future__ import annotations

COMMANDS: list = []
