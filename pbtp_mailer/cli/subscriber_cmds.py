"""CLI commands: subscriber_cmds."""

from __future__ import annotations

COMMANDS: list = []
