"""CLI command ``doctor``: deliverability checks, one line each, with the fix."""

from __future__ import annotations

import sys
from typing import Any

import click

from pbtp_mailer.cli._context import AppContext, pass_app
from pbtp_mailer.cli._echo import echo, echo_json


def _store(app: AppContext) -> Any:
    from pbtp_mailer.errors import StoreError
    from pbtp_mailer.store import Store

    try:
        return Store.open(app.config)
    except StoreError:
        return None


@click.command()
@click.option("--sender", "sender_name", default=None,
              help="Sender name from the config (default: default_sender).")
@click.option("--issue", "issue_file", type=click.Path(dir_okay=False), default=None,
              help="Also build this issue, sign it as a send would and check the message.")
@click.option("--nameserver", default=None, metavar="HOST[:PORT]",
              help="Ask this DNS resolver (default: [doctor] nameserver, then the system's).")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"checks": [{"id", "status", "message", "fix"}]}.')
@click.option("--offline", is_flag=True, help="Skip DNS and HTTP checks (and say so).")
@pass_app
def doctor(app: AppContext, sender_name: str | None, issue_file: str | None,
           nameserver: str | None, as_json: bool, offline: bool) -> None:
    """Check deliverability: SPF, DKIM, DMARC, alignment, MX/PTR, unsubscribe, config.

    One line per check, "ok", "warn" or "fail", and for each warn/fail the
    fix (the DNS record to publish, with its value). Exit codes: 0 nothing
    failed, 1 something failed, 2 bad input.
    """
    from pbtp_mailer.doctor import DoctorOptions, run_doctor
    from pbtp_mailer.doctor.resolver import parse_nameserver

    if nameserver is not None:
        parse_nameserver(nameserver)  # a bad value is exit 2 before any check runs
    options = DoctorOptions(sender=sender_name, issue=issue_file, nameserver=nameserver,
                            offline=offline)
    store = _store(app)
    try:
        report = run_doctor(app.config, options, store=store)
    finally:
        if store is not None:
            store.close()
    if as_json:
        echo_json(report.as_json())
    else:
        for line in report.lines():
            echo(line)
    sys.exit(report.exit_code)


COMMANDS = [doctor]
