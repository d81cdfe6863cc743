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
from pbtp_mailer.cli._echo import echo

__all__ = ["main", "AppContext", "pass_app"]


# what a database error interrupted, and what it leaves, by command
_DOING = {
    "lists import": ("importing", "nothing was changed"),
    "suppress import": ("importing suppressions", "nothing was changed"),
    "send": ("sending", "what was recorded before stays; run the same command again "
                        "to resume"),
    "dispatch-due": ("sending due issues", "what was recorded before stays; the next run "
                                           "resumes"),
}


class MailerGroup(click.Group):
    """Turns library errors into one readable line and an exit code."""

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name, cmd, rest = super().resolve_command(ctx, args)
        words = [name or ""]
        if isinstance(cmd, click.Group):
            words += [w for w in rest if not w.startswith("-")][:1]
        ctx.meta["pbtp_mailer.command"] = " ".join(words)
        return name, cmd, rest

    def invoke(self, ctx: click.Context) -> Any:
        from pbtp_mailer.errors import MailerError

        try:
            return super().invoke(ctx)
        except MailerError as exc:
            self._fail(ctx, exc)
        except KeyboardInterrupt:
            echo("Interrupted.", err=True)
            ctx.exit(130)
        except Exception as exc:
            from pbtp_mailer.store.dberrors import database_error

            command = ctx.meta.get("pbtp_mailer.command", "")
            doing, after = _DOING.get(command, (f"running '{command}'",
                                                "the command stopped there"))
            translated = database_error(exc, doing, after)
            if translated is None:
                raise
            self._fail(ctx, translated)

    @staticmethod
    def _fail(ctx: click.Context, exc: Any) -> None:
        echo(f"Error: {exc}", err=True)
        if exc.hint:
            echo(f"Hint: {exc.hint}", err=True)
        ctx.exit(exc.exit_code)


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
        doctor_cmds,
        editor_cmds,
        feedback_cmds,
        schedule_cmds,
        sender_cmds,
        subscribe_cmds,
        subscriber_cmds,
    )
    for module in (compose_cmds, editor_cmds, subscriber_cmds, subscribe_cmds, sender_cmds,
                   dispatch_cmds, schedule_cmds, doctor_cmds, feedback_cmds):
        for command in getattr(module, "COMMANDS", ()):
            main.add_command(command)


_register()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
