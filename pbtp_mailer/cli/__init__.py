"""The ``pbtp-mailer`` command: a thin click shell over the library.

Each command parses options, calls one library function and prints. Library
errors (``MailerError``) become one ``Error: ...`` line and a non-zero exit;
this module and its siblings import the library lazily so that ``build``
does not pay for senders, databases or HTTP clients.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from pbtp_mailer.cli._context import AppContext, pass_app

__all__ = ["main", "AppContext", "pass_app"]


class MailerGroup(click.Group):
    """Turns library errors into one readable line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        from pbtp_mailer.errors import MailerError

        try:
            return super().invoke(ctx)
        except MailerError as exc:
            click.echo(f"Error: {exc}", err=True)
            if exc.hint:
                click.echo(f"Hint: {exc.hint}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)


@click.group(cls=MailerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="pbtp-mailer.toml to use (default: $PBTP_MAILER_CONFIG, then ./pbtp-mailer.toml).",
)
@click.version_option(package_name="pbtp-mailer")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """Compose, test and dispatch the Alliance PBTP newsletter."""
    ctx.obj = AppContext(config_path=config_path)


def _register() -> None:
    from pbtp_mailer.cli import (
        compose_cmds,
        dispatch_cmds,
        editor_cmds,
        feedback_cmds,
        schedule_cmds,
        sender_cmds,
        subscriber_cmds,
    )
    for module in (compose_cmds, editor_cmds, subscriber_cmds, sender_cmds, dispatch_cmds,
                   schedule_cmds, feedback_cmds):
        for command in getattr(module, "COMMANDS", ()):
            main.add_command(command)


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
