"""CLI commands of scheduled dispatch: ``dispatch-due`` (for cron) and ``schedule``."""

from __future__ import annotations

import datetime as dt
import signal
import sys
from pathlib import Path
from typing import Any

import click

from pbtp_mailer.cli._context import AppContext, pass_app
from pbtp_mailer.cli._echo import echo


def _now_option(f: Any) -> Any:
    return click.option(
        "--now", "now_text", default=None, metavar="ISO",
        help="Act as if it were this time (ISO 8601 with an offset; tests, catching up).")(f)


def _issues_option(f: Any) -> Any:
    return click.option(
        "--issues-dir", type=click.Path(file_okay=False), default=None,
        help="Folder of issue files (default: issues/ next to the config file).")(f)


def _start(now_text: str | None) -> dt.datetime:
    from pbtp_mailer.schedule.state import parse_now

    if now_text is None:
        return dt.datetime.now(dt.UTC)
    try:
        return parse_now(now_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--now'") from None


def _issues_dir(app: AppContext, issues_dir: str | None) -> Path:
    return Path(issues_dir) if issues_dir else app.config.base_dir / "issues"


@click.command("dispatch-due")
@_issues_option
@_now_option
@click.option("--log-file", type=click.Path(dir_okay=False), default=None,
              help="Append one structured line per event here (logrotate-safe).")
@click.option("--skip-doctor", is_flag=True,
              help="Start large dispatches even when a deliverability check fails.")
@pass_app
def dispatch_due(app: AppContext, issues_dir: str | None, now_text: str | None,
                 log_file: str | None, skip_doctor: bool) -> None:
    """Send every scheduled issue that is due; retry earlier deferred recipients.

    Made for cron, every few minutes: silent when all is well, one line per
    problem on stderr otherwise (stale issue, failed or paused dispatch,
    invalid issue file). Exit codes: 0 fine, or another run holds the lock
    (a one-line notice); 1 some problem; 2 bad config or options.
    """
    from pbtp_mailer.schedule.lock import LockBusyError
    from pbtp_mailer.schedule.run import run_due
    from pbtp_mailer.schedule.runlog import RunLog
    from pbtp_mailer.schedule.state import offset_clock

    wall = lambda: dt.datetime.now(dt.UTC)  # noqa: E731
    log = RunLog(log_file, wall)
    old: dict[int, Any] = {}

    def hook(runner: Any) -> None:
        for s in (signal.SIGINT, signal.SIGTERM):
            old[s] = signal.signal(s, lambda *_: runner.stop("interrupted by a signal"))

    try:
        report = run_due(app.config, issues_dir=_issues_dir(app, issues_dir), clock=wall,
                         schedule_clock=offset_clock(_start(now_text)) if now_text else None,
                         log=log, on_start=hook, skip_doctor=skip_doctor)
    except LockBusyError as exc:
        echo(f"dispatch-due: {exc}; exiting.", err=True)
        return
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    for line in report.problems:
        echo(line, err=True)
    sys.exit(report.exit_code)


@click.command()
@_issues_option
@_now_option
@click.option("--install-cron", is_flag=True,
              help="Print the crontab entry (absolute paths) and exit; nothing is written.")
@click.option("--every", type=click.IntRange(1, 59), default=5, show_default=True,
              help="Minutes between cron runs in the printed entry.")
@pass_app
def schedule(app: AppContext, issues_dir: str | None, now_text: str | None,
             install_cron: bool, every: int) -> None:
    """List scheduled issues: send time (local and UTC), lists, state; the crontab line.

    States: upcoming, due (the next dispatch-due sends it), sending, done,
    stale (send time older than dispatch.stale_after_hours and never started:
    cron will not send it). Exit code 2 when an issue file is invalid.
    """
    from pbtp_mailer.schedule.crontab import cron_entry, env_file_problems
    from pbtp_mailer.schedule.state import find_scheduled, format_schedule, schedule_entries
    from pbtp_mailer.store import Store

    config = app.config
    if install_cron:
        echo(f"# pbtp-mailer: send due issues every {every} minutes "
             f"(secrets: {config.data_dir / 'env'}; see docs/schedule.md)")
        echo(cron_entry(config, every))
        for line in env_file_problems(config):
            echo(f"Warning: {line}", err=True)
        return
    now = _start(now_text)
    items, problems = find_scheduled(_issues_dir(app, issues_dir), config)
    with Store.open(config) as store:
        entries = schedule_entries(items, store, config, now)
    if entries:
        echo(format_schedule(entries, config.newsletter.timezone))
    else:
        echo("No scheduled issues (an issue is sent by cron only with a 'schedule').")
    echo("")
    echo("Crontab entry (crontab -e; or pbtp-mailer schedule --install-cron):")
    echo(cron_entry(config, every))
    for line in problems:
        echo(line, err=True)
    if problems:
        sys.exit(2)


COMMANDS = [dispatch_due, schedule]
