"""CLI commands for lists, subscribers, suppression, unsubscribes and the endpoint.

Each command opens the store, calls one library function and prints. Exit
codes: 0 done; 1 done, but some rows or messages were rejected (they are
listed on stderr); 2 nothing done (bad file, unknown list, --strict).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from pbtp_mailer.cli._context import AppContext, open_store, pass_app, when
from pbtp_mailer.cli._echo import echo, echo_json

__all__ = ["COMMANDS"]


def _plural(n: int, word: str) -> str:
    suffix = "es" if word.endswith("s") else "s"
    return f"{n} {word}{'' if n == 1 else suffix}"


# -- lists -----------------------------------------------------------------------


@click.group(invoke_without_command=True)
@click.pass_context
def lists(ctx: click.Context) -> None:
    """Show mailing lists with their counts (or manage them with a subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    app = ctx.find_object(AppContext)
    assert app is not None
    with open_store(app) as store:
        counts = store.list_counts()
    if not counts:
        echo("No lists yet. Create one with: pbtp-mailer lists create NAME")
        return
    width = max(4, *(len(c.name) for c in counts))
    echo(f"{'LIST':<{width}}  {'ACTIVE':>7}  {'UNSUBSCRIBED':>12}  {'BOUNCED':>7}  "
         f"{'COMPLAINED':>10}  DESCRIPTION")
    for c in counts:
        echo(f"{c.name:<{width}}  {c.active:>7}  {c.unsubscribed:>12}  {c.bounced:>7}  "
             f"{c.complained:>10}  {c.description}".rstrip())


@lists.command("create")
@click.argument("name")
@click.option("--description", default="", help="One line shown by `pbtp-mailer lists`.")
@click.option("--public", is_flag=True, help="Show it on sign-up forms and preference pages.")
@pass_app
def lists_create(app: AppContext, name: str, description: str, public: bool) -> None:
    """Create the list NAME."""
    with open_store(app) as store:
        ml = store.create_list(name, description)
        if public:
            store.signups.set_public(ml.name, True)
    echo(f"Created {'public ' if public else ''}list {ml.name!r}.")


@lists.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def lists_delete(app: AppContext, name: str, yes: bool) -> None:
    """Delete the list NAME and its memberships (subscribers and history stay)."""
    with open_store(app) as store:
        store.get_list(name)
        count = next(c for c in store.list_counts() if c.name == name)
        members = count.active + count.unsubscribed + count.bounced + count.complained
        if not yes:
            click.confirm(f"Delete list {name!r} and its {_plural(members, 'membership')}?",
                          abort=True)
        gone = store.delete_list(name)
    echo(f"Deleted list {name!r} ({_plural(gone, 'membership')}).")


@lists.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check and count, change nothing.")
@click.option("--strict", is_flag=True, help="Refuse the whole file if any row is rejected.")
@pass_app
def lists_import(app: AppContext, name: str, file: str, dry_run: bool, strict: bool) -> None:
    """Import subscribers into NAME from FILE (CSV with an 'email' column).

    Rejected rows are listed as FILE:LINE: reason and the good rows are
    imported (exit 1); with --strict nothing is imported (exit 2). Addresses
    that unsubscribed, bounced or complained are skipped, never resubscribed.
    """
    from pbtp_mailer.errors import ImportFileError

    with open_store(app) as store:
        try:
            report = store.import_csv(name, file, dry_run=dry_run, strict=strict)
        except ImportFileError as exc:
            if strict and exc.problems and not exc.hint:
                exc.hint = "nothing was imported (--strict); fix the rows and import again"
            raise
    for p in report.rejected:
        echo(str(p), err=True)
    for s in report.skipped:
        echo(f"{report.file}:{s.line}: skipped {s.email}: {s.reason}")
    echo(
        f"{report.file}: {_plural(report.rows, 'row')}: {report.added} added, "
        f"{report.updated} updated, {report.unchanged} unchanged, {len(report.skipped)} "
        f"skipped, {len(report.rejected)} rejected."
        + (" Dry run: nothing was changed." if dry_run else "")
    )
    if report.rejected:
        click.get_current_context().exit(1)


@lists.command("export")
@click.argument("name")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write to this file instead of standard output.")
@click.option("--for-spreadsheet", is_flag=True,
              help="Prefix addresses, names and attributes that start with = + - @ with an "
                   "apostrophe, "
                   "so a spreadsheet shows them instead of running them as formulas.")
@pass_app
def lists_export(app: AppContext, name: str, output: str | None,
                 for_spreadsheet: bool) -> None:
    """Write the members of NAME as CSV: email, name, status, changed_at, attributes."""
    from pbtp_mailer.files import atomic_open

    with open_store(app) as store:
        store.get_list(name)  # an unknown list is an error before any file is touched
        if output is None:
            store.export_csv(name, sys.stdout, for_spreadsheet=for_spreadsheet)
            return
        try:
            with atomic_open(output, "w", encoding="utf-8", newline="") as fh:
                count = store.export_csv(name, fh, for_spreadsheet=for_spreadsheet)
        except OSError as exc:
            raise click.ClickException(f"{output}: cannot write: {exc.strerror or exc}") from None
    echo(f"Exported {_plural(count, 'member')} of {name!r} to {output}.", err=True)


# -- subscribers -----------------------------------------------------------------


def _attrs(values: tuple[str, ...]) -> dict[str, str]:
    from pbtp_mailer.store.csvimport import attribute_key

    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not attribute_key(key):
            raise click.BadParameter(f"expected key=value, got {item!r}", param_hint="--attr")
        out[attribute_key(key)] = value
    return out


@click.group()
def subscribers() -> None:
    """Add, remove and show subscribers."""


@subscribers.command("add")
@click.argument("list_name", metavar="LIST")
@click.argument("email")
@click.option("--name", default=None, help="Display name.")
@click.option("--attr", "attrs", multiple=True, metavar="KEY=VALUE",
              help="An attribute for layouts (repeatable).")
@click.option("--resubscribe", is_flag=True,
              help="Lift an earlier unsubscribe (only when the person asked to come back).")
@pass_app
def subscribers_add(app: AppContext, list_name: str, email: str, name: str | None,
                    attrs: tuple[str, ...], resubscribe: bool) -> None:
    """Subscribe EMAIL to LIST."""
    values = _attrs(attrs)
    with open_store(app) as store:
        result = store.add_subscriber(list_name, email, name=name, attrs=values,
                                      resubscribe=resubscribe)
        shown = store.subscriber(email).email
    if result == "added":
        echo(f"Subscribed {shown} to {list_name!r}.")
    elif result == "resubscribed":
        echo(f"Resubscribed {shown} to {list_name!r}.")
    else:
        echo(f"{shown} is already subscribed to {list_name!r}.")


@subscribers.command("remove")
@click.argument("list_name", metavar="LIST")
@click.argument("email")
@pass_app
def subscribers_remove(app: AppContext, list_name: str, email: str) -> None:
    """Remove EMAIL from LIST (an administrative removal; see `unsubscribe`)."""
    with open_store(app) as store:
        store.remove_subscriber(list_name, email)
    echo(f"Removed {email.strip()} from {list_name!r}.")


@subscribers.command("show")
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_app
def subscribers_show(app: AppContext, email: str, as_json: bool) -> None:
    """Show EMAIL's lists, statuses, consent records and the history of status changes."""
    from pbtp_mailer.cli.subscribe_cmds import consent_lines, show_json

    with open_store(app) as store:
        if as_json:
            echo_json(show_json(store, email))
            return
        d = store.subscriber(email)
        consents = consent_lines(store, email)
        events = store.feedback.events(email=d.email)  # bounces, complaints (feedback/)
    echo(d.email)
    if d.name:
        echo(f"  name: {d.name}")
    if d.attrs:
        echo("  attributes: " + ", ".join(f"{k}={v}" for k, v in sorted(d.attrs.items())))
    if d.suppression:
        echo(f"  suppressed on all lists: {d.suppression[0]} since {when(d.suppression[1])}")
    echo("Lists:")
    if not d.memberships:
        echo("  (none)")
    width = max([4, *(len(m[0]) for m in d.memberships)])
    for list_name, status, since in d.memberships:
        echo(f"  {list_name:<{width}}  {status:<12}  since {when(since)}")
    echo("History:")
    for h in d.history:
        detail = f"  ({h.detail})" if h.detail else ""
        echo(f"  {when(h.changed_at)}  {h.list_name or '(all lists)'}  {h.status}  "
             f"{h.source}{detail}")
    echo("Consent:")
    for line in consents or ["  (none recorded)"]:
        echo(line)
    if events:
        echo("Bounces and complaints:")
        for e in events:
            echo(f"  {when(e.received_at)}  {e.kind}  {e.source}  {e.status or '-'}  "
                 f"{e.diagnostic[:100]}".rstrip())


# -- suppression, unsubscribes ---------------------------------------------------


@click.group()
def suppress() -> None:
    """Suppress addresses that bounced, complained or unsubscribed elsewhere."""


@suppress.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--reason", required=True,
              type=click.Choice(["bounced", "complained", "unsubscribed"]),
              help="Why these addresses must not be mailed.")
@pass_app
def suppress_import(app: AppContext, file: str, reason: str) -> None:
    """Suppress every address in FILE (a provider's CSV export, or one address a line)."""
    with open_store(app) as store:
        report = store.import_suppressions(file, reason)
    for p in report.rejected:
        echo(str(p), err=True)
    echo(f"{report.file}: {_plural(report.added, 'address')} suppressed as {reason}, "
         f"{report.unchanged} already suppressed, {len(report.rejected)} rejected.")
    if report.rejected:
        click.get_current_context().exit(1)


@suppress.command("remove")
@click.argument("email")
@click.option("--reason", "why", required=True,
              help="Why the suppression was wrong (kept in the address's history).")
@pass_app
def suppress_remove(app: AppContext, email: str, why: str) -> None:
    """Lift the bounce or complaint of EMAIL recorded in error (an unsubscribe stays)."""
    with open_store(app) as store:
        lifted = store.unsuppress(email, reason=why)
    echo(f"{email}: {lifted} suppression removed; the address gets the next issue "
         "of each list it is subscribed to.")


@click.command()
@click.argument("email", required=False)
@click.option("--list", "list_name", default=None, help="Only this list (default: all lists).")
@click.option("--from-mbox", "mbox", type=click.Path(exists=False), default=None,
              help="Process 'unsubscribe TOKEN' requests from an mbox file or Maildir folder.")
@pass_app
def unsubscribe(app: AppContext, email: str | None, list_name: str | None,
                mbox: str | None) -> None:
    """Unsubscribe EMAIL (from one list or all), or process mailed requests."""
    if (email is None) == (mbox is None):
        raise click.UsageError("give either EMAIL or --from-mbox FILE")
    if mbox is not None:
        if list_name is not None:
            raise click.UsageError("--list does not apply to --from-mbox (tokens name the list)")
        _from_mbox(app, Path(mbox))
        return
    assert email is not None
    with open_store(app) as store:
        changed = store.unsubscribe(email, list_name, source="cli")
    where = f"from {list_name!r}" if list_name else "from all lists"
    if changed:
        echo(f"Unsubscribed {email.strip()} {where}.")
    else:
        echo(f"{email.strip()} was already unsubscribed {where}.")


def _from_mbox(app: AppContext, path: Path) -> None:
    from pbtp_mailer.store.mailto import process_mailbox

    secret = app.config.secret()
    with open_store(app) as store:
        report = process_mailbox(store, secret, path)
    for email, list_name in report.applied:
        echo(f"Unsubscribed {email} from {list_name!r}.")
    for email, list_name in report.already:
        echo(f"{email} was already unsubscribed from {list_name!r}.")
    for problem in report.problems:
        echo(problem, err=True)
    echo(f"{path}: {_plural(report.messages, 'message')}: {len(report.applied)} applied, "
         f"{len(report.already)} already done, {len(report.problems)} not applied.")
    if report.problems:
        click.get_current_context().exit(1)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8025, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Worker threads of waitress.")
@click.option("--trusted-proxy", default=None, metavar="IP",
              help="Reverse proxy whose X-Forwarded-* headers to trust (see docs/unsubscribe.md).")
@pass_app
def serve(app: AppContext, host: str, port: int, threads: int,
          trusted_proxy: str | None) -> None:
    """Run the public site with waitress: one-click unsubscribe, sign-up and preference pages.

    Limits fit a form endpoint (docs/unsubscribe.md): bodies over 64 kB are
    refused from their Content-Length, idle connections close after 10 s.
    """
    import waitress

    from pbtp_mailer.web.app import make_site, site_mounts
    from pbtp_mailer.web.server import server_options

    config = app.config
    config.secret()  # a missing secret is a clear error before the port is opened
    with open_store(app) as store:
        wsgi = make_site(site_mounts(store, config))
        options = server_options(host, port, threads, trusted_proxy)
        echo(f"Serving unsubscribe links on http://{host}:{port}/u/TOKEN "
             "(Ctrl-C to stop).", err=True)
        waitress.serve(wsgi, **options)


COMMANDS = [lists, subscribers, suppress, unsubscribe, serve]
