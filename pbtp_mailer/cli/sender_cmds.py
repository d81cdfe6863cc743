"""CLI commands: ``pbtp-mailer senders`` (list) and ``pbtp-mailer senders check NAME|URL``.

Secrets are never printed: a listing shows which environment variable holds
each one and whether it is set.
"""

from __future__ import annotations

import click

from pbtp_mailer.cli._context import AppContext, pass_app
from pbtp_mailer.cli._echo import echo

__all__ = ["COMMANDS", "senders_group"]


@click.group("senders", invoke_without_command=True)
@click.pass_context
def senders_group(ctx: click.Context) -> None:
    """List the configured senders and the sender kinds installed.

    A sender is named by a [senders.NAME] table of pbtp-mailer.toml, by a
    bare kind (outbox, console, memory), or by a URL such as
    smtp://news@smtp.example.org:587, smtps://host:465, ses://eu-west-1,
    postmark://, sendgrid://, mailgun://DOMAIN or outbox:///path.
    """
    if ctx.invoked_subcommand is not None:
        return
    from pbtp_mailer.senders.registry import available_kinds, describe_spec, sender_spec

    app: AppContext = ctx.find_object(AppContext)  # type: ignore[assignment]
    config = app.config
    echo("Configured senders:")
    if not config.senders:
        echo("  (none)")
    for name in config.senders:
        mark = "*" if name == config.default_sender else " "
        echo(f"{mark} {name:<12} {describe_spec(sender_spec(name, config))}")
    if config.default_sender not in config.senders:
        echo(f"* default: {config.default_sender}")
    echo("Available kinds:")
    for kind, ref in available_kinds().items():
        echo(f"  {kind:<12} {ref.value}")


@senders_group.command("check")
@click.argument("name_or_url", required=False)
@pass_app
def check_command(app: AppContext, name_or_url: str | None) -> None:
    """Open and close a connection to a sender: proves address, TLS and credentials.

    NAME_OR_URL defaults to the configured default sender. Nothing is sent.
    """
    import os

    from pbtp_mailer.errors import ConfigError
    from pbtp_mailer.senders.registry import build_sender, create_sender, parse_sender_url

    try:
        config = app.config
    except ConfigError:
        if not name_or_url or "://" not in name_or_url:
            raise
        config = None  # a URL needs no config file
    if config is None:
        assert name_or_url is not None
        spec = parse_sender_url(name_or_url, environ=dict(os.environ), base_dir=os.getcwd())
        sender = build_sender(spec, concurrency=1)
    else:
        sender = create_sender(name_or_url, config, concurrency=1)
    check = getattr(sender, "check", None)
    if check is not None:
        detail = check()
    else:  # non-network senders: opening proves what can be proved
        sender.open()
        sender.close()
        detail = "opened and closed"
    echo(f"{sender.name}: OK: {detail}")


COMMANDS = [senders_group]
