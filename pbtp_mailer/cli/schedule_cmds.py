"""CLI commands: schedule_cmds."""

from __future__ import annotations

COMMANDS: list = []
