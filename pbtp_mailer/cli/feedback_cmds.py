"""CLI of the feedback loop: ``bounces ingest|fetch|list`` and ``report``."""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

import click

from pbtp_mailer.cli._context import AppContext, open_store, pass_app
from pbtp_mailer.cli._echo import echo, echo_json

if TYPE_CHECKING:
    from pbtp_mailer.feedback.ingest import IngestItem

__all__ = ["COMMANDS"]


def _print_item(item: IngestItem) -> None:
    from pbtp_mailer.feedback import Ignored

    if isinstance(item.parsed, list):
        for r in item.recorded:
            if not r.email:
                echo(f"{item.where}: unmatched: {r.event.kind} report names no address "
                     "and no copy we know", err=True)
                continue
            what = replace(r.event, email=r.email).summary()
            state = "recorded" if r.new else "already known"
            extra = f"; suppressed as {r.suppressed_as}" if r.suppressed_as else ""
            echo(f"{item.where}: {state}: {what}{extra}")
    elif isinstance(item.parsed, Ignored):
        echo(f"{item.where}: ignored: {item.parsed.reason}")
    else:
        echo(f"{item.where}: not recognised, left as is: {item.parsed.reason}", err=True)


@click.group()
def bounces() -> None:
    """Bounces and complaints that come back: read them, list them."""


@bounces.command("ingest")
@click.argument("source", default="-", metavar="[FILE|MAILDIR|-]")
@click.option("--recipient", default=None, metavar="ADDRESS",
              help="The envelope recipient (the VERP address), e.g. ${original_recipient} "
                   "from a Postfix pipe transport.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary line.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Parse in this many processes (large Maildirs).")
@pass_app
def ingest_cmd(app: AppContext, source: str, recipient: str | None, quiet: bool,
               jobs: int) -> None:
    """Read returned mail (one message, an mbox, a Maildir, or '-' for stdin) and record
    the bounces and complaints in it.

    DSNs (RFC 3464) and ARF reports (RFC 5965) are read by their structure;
    auto-replies and ARF not-spam reports are ignored; anything else is
    reported and left alone. Exit code 0 even when some messages were not
    recognised (they are listed on stderr); 1 when the source cannot be read.
    """
    from pbtp_mailer.feedback import Policy, load_settings
    from pbtp_mailer.feedback.ingest import ingest, read_messages
    from pbtp_mailer.feedback.verp import verp_for

    config = app.config
    settings = load_settings(config)
    verp = verp_for(config)
    with open_store(app) as store:
        report = ingest(store, read_messages(source, sys.stdin.buffer), verp=verp,
                        policy=Policy.from_settings(settings),
                        on_item=None if quiet else _print_item, envelope_to=recipient,
                        jobs=jobs)
    echo(report.summary())


@bounces.command("fetch")
@click.option("--limit", type=click.IntRange(1), default=None,
              help="Process at most this many messages in this run.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary line.")
@pass_app
def fetch_cmd(app: AppContext, limit: int | None, quiet: bool) -> None:
    """Read new messages of the IMAP bounce mailbox ([feedback] imap_*), record them and
    move each processed one to the done folder (cron: every few minutes).

    The password comes from the environment variable named by
    imap_password_env. Messages that are not recognised stay where they are.
    """
    from pbtp_mailer.feedback import Policy, load_settings
    from pbtp_mailer.feedback.imap import fetch
    from pbtp_mailer.feedback.verp import verp_for

    config = app.config
    settings = load_settings(config)
    with open_store(app) as store:
        report = fetch(store, settings, config.environ, verp=verp_for(config),
                       policy=Policy.from_settings(settings), limit=limit,
                       on_item=None if quiet else _print_item)
    echo(report.summary())


def _parse_since(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        if value.endswith("d") and value[:-1].isdigit():
            return dt.datetime.now(dt.UTC) - dt.timedelta(days=int(value[:-1]))
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: want ISO 8601 (2024-03-01) or days ('7d')",
                                 param_hint="'--since'") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@bounces.command("list")
@click.option("--since", default=None, metavar="DATE|Nd",
              help="Only events received since this date (ISO 8601) or so many days ('7d').")
@click.option("--kind", type=click.Choice(["hard", "soft", "complaint", "unsubscribe"]),
              default=None, help="Only this kind of event.")
@click.option("--email", default=None, metavar="ADDRESS", help="Only events of this address.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
def list_cmd(app: AppContext, since: str | None, kind: str | None, email: str | None,
             as_json: bool) -> None:
    """List recorded bounces, complaints and provider unsubscribes, oldest first."""
    with open_store(app) as store:
        rows = store.feedback.events(email=email, since=_parse_since(since), kind=kind)
    if as_json:
        echo_json(json.dumps([{
            "received_at": r.received_at.isoformat(timespec="seconds"), "email": r.email,
            "kind": r.kind, "source": r.source, "status": r.status, "diagnostic": r.diagnostic,
            "dispatch_id": r.dispatch_id, "suppressed_as": r.suppressed_as,
            "event_id": r.event_id} for r in rows], indent=2))
        return
    if not rows:
        echo("No bounces or complaints recorded.")
        return
    for r in rows:
        sup = f"  -> {r.suppressed_as}" if r.suppressed_as else ""
        why = " ".join(r.diagnostic.split())[:80]  # the receiver's words: echo escapes them
        echo(f"{r.received_at:%Y-%m-%d %H:%M}  {r.kind:<11} {r.source:<8} "
             f"{r.status or '-':<8} {r.email}{sup}" + (f"  {why}" if why else ""))


@click.command("report")
@click.argument("issue_file", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", default=None, metavar="FILE",
              help="Where to write the HTML (default: report-ISSUE.html).")
@pass_app
def report_cmd(app: AppContext, issue_file: str, output: str | None) -> None:
    """Write one self-contained HTML page about ISSUE_FILE's dispatch: deliveries,
    bounces and complaints over time, outcomes by domain, top bounce reasons,
    unsubscribes that followed. Opens from a file; makes no network request."""
    from pbtp_mailer.feedback.report import write_report
    from pbtp_mailer.issue.model import load_issue

    issue = load_issue(issue_file)
    out = output or f"report-{issue.id}.html"
    with open_store(app) as store:
        try:
            data = write_report(store, issue.id, issue.subject, out)
        except OSError as exc:
            raise click.ClickException(f"{out}: cannot write: {exc.strerror}") from None
    if not data.lists:
        echo(f"Note: issue {issue.id} has not been dispatched yet.", err=True)
    echo(f"Wrote {out}")


COMMANDS = [bounces, report_cmd]
