"""CLI commands of composition: ``build`` and ``schema``."""

from __future__ import annotations

from typing import Any

import click

from pbtp_mailer.cli._context import AppContext, pass_app
from pbtp_mailer.cli._echo import echo


@click.command()
@click.argument("issue_file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", default="build", show_default=True,
              type=click.Path(file_okay=False), help="Folder to write DIR/<issue-id>/ into.")
@pass_app
def build(app: AppContext, issue_file: str, out_dir: str) -> None:
    """Compose ISSUE_FILE into email.html, email.txt, message.eml and web.html.

    Nothing is written when the issue is invalid: every problem is listed as
    FILE:LINE:COL: field: message, and the exit code is 2.
    """
    from pbtp_mailer.compose.build import build_issue

    result = build_issue(issue_file, app.config, out_dir)
    echo(f"Built {result.folder}/")
    echo(f"  subject:   {result.rendition.subject}")
    echo(f"  preheader: {result.rendition.preheader}")
    for name, size in result.files.items():
        echo(f"  {name:<12} {size:>8,} bytes")
    for warning in result.warnings:
        echo(f"warning: {warning}", err=True)


@click.command()
@click.option("-o", "--output", type=click.File("w", atomic=True), default="-",
              help="Write the schema to a file instead of standard output.")
def schema(output: Any) -> None:
    """Print the JSON Schema of issue files (for YAML editor completion).

    Reference it from an issue with
    '# yaml-language-server: $schema=../docs/issue.schema.json'.
    """
    import json

    from pbtp_mailer.issue.model import issue_json_schema

    output.write(json.dumps(issue_json_schema(), indent=2, ensure_ascii=False) + "\n")


COMMANDS = [build, schema]
