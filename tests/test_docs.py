"""Every command has help text and appears in the README or docs/ (sqlite-utils style)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from pbtp_mailer.cli import main
from tests.conftest import ROOT

DOCS = (ROOT / "README.md").read_text(encoding="utf-8") + "".join(
    p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md")))


def _commands(group: click.Group, prefix: str = ""):
    for name, cmd in sorted(group.commands.items()):
        full = f"{prefix}{name}"
        yield full, cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, full + " ")


COMMANDS = list(_commands(main))


def test_there_are_commands():
    names = {n for n, _ in COMMANDS}
    assert {"build", "schema", "send", "test-send", "status"} <= names


@pytest.mark.parametrize("name, cmd", COMMANDS, ids=[n for n, _ in COMMANDS])
def test_command_has_help_and_docs(name, cmd):
    assert (cmd.help or "").strip(), f"{name} has no help text"
    assert f"pbtp-mailer {name}" in DOCS, f"'pbtp-mailer {name}' is not in README.md or docs/"
    result = CliRunner().invoke(main, [*name.split(), "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_readme_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash scripts/test.sh" in ci
    assert "bash scripts/test.sh" in (ROOT / "README.md").read_text(encoding="utf-8")
