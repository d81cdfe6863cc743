"""Scheduled dispatch: issues with a ``schedule`` sent by cron or a systemd timer.

- ``state``: when an issue is due, and the state of each scheduled issue;
- ``run``: one ``pbtp-mailer dispatch-due`` run (quiet on success, one line per problem);
- ``lock``: the run lock, so overlapping runs never double-send;
- ``crontab``: the crontab entry and its environment file;
- ``runlog``: the one-line-per-event log of cron runs.
"""

from pbtp_mailer.schedule.lock import LockBusyError, RunLock
from pbtp_mailer.schedule.run import DueReport, DueRunner, run_due
from pbtp_mailer.schedule.state import find_scheduled, schedule_entries, schedule_problems

__all__ = ["DueReport", "DueRunner", "LockBusyError", "RunLock", "find_scheduled", "run_due",
           "schedule_entries", "schedule_problems"]
