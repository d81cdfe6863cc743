"""CLI commands of the editor tools: new, check, preview, archive."""

from __future__ import annotations

COMMANDS: list = []
