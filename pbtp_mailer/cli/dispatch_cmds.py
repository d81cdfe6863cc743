"""CLI commands of dispatch: ``send``, ``test-send`` and ``status``."""

from __future__ import annotations

import signal
import sys
import time
from typing import Any

import click

from pbtp_mailer.cli._context import AppContext, open_store, pass_app
from pbtp_mailer.cli._echo import echo, echo_json


class _Progress:
    """A rich progress bar on a terminal; a plain line every few seconds otherwise (cron)."""

    def __init__(self, total: int, label: str, every: float = 5.0) -> None:
        self.total = max(total, 1)
        self.label = label
        self.every = every
        self.last = 0.0
        self.bar: Any = None
        self.task: Any = None
        if sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                MofNCompleteColumn(), TextColumn("{task.fields[rate]}/s"),
                                TimeRemainingColumn(), transient=True)
            self.task = self.bar.add_task(label, total=self.total, rate="0")
            self.bar.start()

    def __call__(self, report: Any) -> None:
        done = report.sent + report.failed + report.skipped
        rate = report.sent / report.elapsed if report.elapsed > 0 else 0.0
        if self.bar is not None:
            self.bar.update(self.task, completed=done, rate=f"{rate:.0f}")
            return
        now = time.monotonic()
        if done + report.deferred == 0:  # nothing to tell yet (the run is starting)
            return
        if now - self.last >= self.every:
            self.last = now
            echo(f"{self.label}: sent {report.sent}, failed {report.failed}, deferred "
                 f"{report.deferred} of {self.total} ({rate:.0f}/s)", err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@click.command()
@click.argument("issue_file", type=click.Path(dir_okay=False))
@click.option("--list", "list_name", required=True, help="Subscriber list to send to.")
@click.option("--sender", "sender_name", default=None,
              help="Sender name from the config, or a URL (smtp://user@host:587, outbox:///dir).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Send at most N messages in this run (the rest wait for the next run).")
@click.option("--rate", type=click.FloatRange(min=0.01), default=None,
              help="At most R messages per second (overrides the sender's rate).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=None,
              help="Parallel connections/requests of the sender.")
@click.option("--dry-run", is_flag=True,
              help="Compose and personalise every message; send nothing, record nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (cron).")
@click.option("--resend-unknown", is_flag=True,
              help="Resend rows left ambiguous ('sending') by an interrupted run.")
@click.option("--accept-changes", is_flag=True,
              help="The issue changed mid-dispatch: send the new content to the remaining "
                   "recipients.")
@click.option("--skip-doctor", is_flag=True,
              help="Send even when a deliverability check fails (see pbtp-mailer doctor).")
@pass_app
def send(app: AppContext, issue_file: str, list_name: str, sender_name: str | None,
         limit: int | None, rate: float | None, concurrency: int | None, dry_run: bool,
         yes: bool, resend_unknown: bool, accept_changes: bool, skip_doctor: bool) -> None:
    """Send ISSUE_FILE to a list: each subscriber exactly once.

    Running the same command again resumes: recipients already sent or failed
    are never sent again; deferred ones are retried when due, and those whose
    message the server rejected as such are tried again. Exit codes: 0 all
    sent, 3 some failed, 4 paused or interrupted, 5 some remain (deferred,
    rate quota, ambiguous), 2 bad input.
    """
    from pbtp_mailer.dispatch.dispatcher import Dispatcher, DispatchOptions, plan_dispatch
    from pbtp_mailer.feedback.gate import acknowledge_by_person

    options = DispatchOptions(list_name=list_name, sender=sender_name, limit=limit, rate=rate,
                              concurrency=concurrency, resend_unknown=resend_unknown,
                              accept_changes=accept_changes)
    with open_store(app) as store:
        plan = plan_dispatch(issue_file, app.config, store, options)
        if dry_run:
            _print_dry_run(plan, list_name)
            return
        _print_plan(plan, list_name)
        from pbtp_mailer.doctor import gate_dispatch  # refuses a large send while a check fails

        for note in gate_dispatch(app.config, sender_name, plan.recipients, skip=skip_doctor):
            echo(f"Warning: {note}", err=True)
        if not yes:
            if not sys.stdin.isatty():
                raise click.ClickException("not a terminal: pass --yes to send without asking")
            click.confirm("Send now?", abort=True)
        if acknowledge_by_person(store, app.config):  # feedback/gate.py
            echo("Warning: dispatch-due's complaint-rate refusal is lifted by this send.",
                 err=True)
        progress = _Progress(plan.recipients, f"{plan.issue.id} -> {list_name}")
        dispatcher = Dispatcher(plan, options, ledger=store.ledger(
            message_id_domain=app.config.newsletter.message_id_domain), on_progress=progress)
        old = {s: signal.signal(s, lambda *_: dispatcher.stop("interrupted by a signal"))
               for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            report = dispatcher.run()
        finally:
            progress.close()
            for s, handler in old.items():
                signal.signal(s, handler)
    _print_report(report, resend_unknown)
    sys.exit(report.exit_code)


def _print_dry_run(plan: Any, list_name: str) -> None:
    """``--dry-run``: what a send would do; exit 3 when some rows would fail."""
    from pbtp_mailer.dispatch.dispatcher import dry_run as do_dry_run

    preview = do_dry_run(plan)
    echo(f"Dry run: would send {preview.recipients} messages "
         f"({preview.bytes_total:,} bytes) to list '{list_name}'; "
         f"{preview.suppressed} suppressed subscribers skipped.")
    if preview.first_headers:
        echo("First message's headers:")
        echo(preview.first_headers)
    for address, why in preview.refused:
        echo(f"would fail {address}: {why}", err=True)
    echo("Nothing was sent or recorded. Run without --dry-run to send.")
    if preview.refused:
        sys.exit(3)  # as a real send with failed recipients


def _print_plan(plan: Any, list_name: str) -> None:
    """What is about to be sent, to whom, through which sender; the plan's warnings."""
    echo(f"Subject:    {plan.rendition.subject}")
    echo(f"List:       {list_name} ({plan.recipients} recipients after "
         f"suppression; {plan.suppressed} suppressed)")
    echo(f"Sender:     {plan.sender_name}")
    if plan.limits.per_second or plan.limits.windows:
        echo(f"Rate:       {plan.limits}")
    for warning in plan.warnings:
        echo(f"Warning: {warning}", err=True)


def _print_report(report: Any, resend_unknown: bool) -> None:
    """What the run did, then why it stopped early, if it did (a pause too)."""
    c = report.counts
    rejected = f", rejected {report.rejected}" if report.rejected else ""
    echo(f"This run: sent {report.sent}, failed {report.failed}, deferred "
               f"{report.deferred}{rejected}, skipped (suppressed) {report.skipped} in "
               f"{report.elapsed:.1f}s" + (f" ({report.sent / report.elapsed:.0f}/s)"
                                          if report.elapsed > 0 and report.sent else ""))
    echo(f"Ledger: {c.get('sent', 0)} sent, {c.get('failed', 0)} failed, "
               f"{c.get('deferred', 0)} deferred, {c.get('pending', 0)} pending, "
               + (f"{c['rejected']} rejected, " if c.get("rejected") else "") +
               f"{report.ambiguous} ambiguous")
    if report.quota:
        echo(f"Stopped: {report.quota}; run again later to continue.", err=True)
    if report.stopped:
        echo(f"Stopped: {report.stopped}; run the same command again to resume.", err=True)
    if report.ambiguous and not resend_unknown:
        echo(f"{report.ambiguous} recipients were being sent when an earlier run stopped; "
                   "whether they got it is unknown. See 'pbtp-mailer status'; resend them "
                   "with --resend-unknown.", err=True)
    if report.paused:
        echo(f"Error: {report.pause_message}", err=True)
        echo("Hint: fix the cause, then run the same command again to resume", err=True)


@click.command("test-send")
@click.argument("issue_file", type=click.Path(dir_okay=False))
@click.option("--to", "to", multiple=True, help="A reviewer address (repeatable).")
@click.option("--list", "list_name", default=None,
              help="Also send to every active member of this list (e.g. reviewers).")
@click.option("--sender", "sender_name", default=None, help="Sender name or URL.")
@click.option("--max", "cap", type=click.IntRange(1, 500), default=20, show_default=True,
              help="Refuse to send to more addresses than this.")
@pass_app
def test_send_cmd(app: AppContext, issue_file: str, to: tuple[str, ...], list_name: str | None,
                  sender_name: str | None, cap: int) -> None:
    """Send a [TEST] copy of ISSUE_FILE to reviewers (any address; never recorded)."""
    from pbtp_mailer.dispatch.testsend import send_review_copies
    from pbtp_mailer.doctor import review_warnings

    for note in review_warnings(app.config, sender_name):
        echo(f"Warning: {note}", err=True)
    addresses = list(to)
    if list_name:
        with open_store(app) as store:
            addresses += [r.email for r in store.recipients(list_name)]
    result = send_review_copies(issue_file, app.config, addresses, sender_name=sender_name,
                                cap=cap)
    echo(f"Sent '{result.subject}' via {result.sender} to {len(result.accepted)} "
         "reviewer(s):")
    for addr in result.accepted:
        echo(f"  {addr}")
    for addr, why in result.refused:
        echo(f"  refused {addr}: {why}", err=True)
    if result.refused:
        sys.exit(3)


@click.command()
@click.argument("issue_file", type=click.Path(dir_okay=False))
@click.option("--list", "list_name", default=None, help="Only this list's dispatch.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--recipients", "state", default=None,
              type=click.Choice(["pending", "sending", "sent", "failed", "deferred", "skipped",
                                 "rejected"]),
              help="List the addresses in this state (with time and Message-ID).")
@pass_app
def status(app: AppContext, issue_file: str, list_name: str | None, as_json: bool,
           state: str | None) -> None:
    """Show who got ISSUE_FILE, when, with which Message-ID; failures; ambiguous rows."""
    import json

    from pbtp_mailer.dispatch.status import format_status, issue_status, recipients_in_state
    from pbtp_mailer.issue.model import load_issue

    issue = load_issue(issue_file)
    with open_store(app) as store:
        if state:
            rows = recipients_in_state(store, issue.id, state, list_name)
            if as_json:
                echo_json(json.dumps(rows, indent=2))
            else:
                for r in rows:
                    echo(f"{r['email']}\t{r['list']}\t{r['sent_at'] or '-'}\t"
                         f"{r['message_id'] or '-'}\t{r['last_code'] or ''} "
                         f"{r['last_text'] or ''}".rstrip())
            return
        statuses = issue_status(store, issue.id, app.config.newsletter.message_id_domain,
                                list_name)
    if as_json:
        echo_json(json.dumps([s.as_dict() for s in statuses], indent=2))
    elif not statuses:
        echo(f"Issue {issue.id} has not been dispatched"
             + (f" to list '{list_name}'." if list_name else "."))
    else:
        echo(format_status(statuses))


COMMANDS = [send, test_send_cmd, status]
