"""Dispatch: an issue sent to a list, exactly once per recipient.

- ``plan``: what a dispatch will send (options, frozen content, personalisation, dry run);
- ``dispatcher``: the ``Dispatcher``, which owns policy: rate limits, retries,
  pauses (with a ``PauseReason``) and resume, all recorded through the
  ``Ledger`` that ``Store.ledger(clock)`` hands out;
- ``report``: ``DispatchReport``, what one run did, and the exit codes of ``send``;
- ``ratelimit``: token bucket and minute/hour/day windows;
- ``status``: what the ledger says about a dispatch (``pbtp-mailer status``);
- ``testsend``: review copies (``pbtp-mailer test-send``), never recorded.
"""

from pbtp_mailer.dispatch.dispatcher import (
    EXIT_FAILED,
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_PAUSED,
    Dispatcher,
    DispatchReport,
    PauseReason,
)
from pbtp_mailer.dispatch.plan import DispatchOptions, DryRun, Plan, dry_run, plan_dispatch
from pbtp_mailer.dispatch.status import DispatchStatus, format_status, issue_status
from pbtp_mailer.dispatch.testsend import send_review_copies

__all__ = [
    "EXIT_FAILED", "EXIT_INCOMPLETE", "EXIT_OK", "EXIT_PAUSED",
    "DispatchOptions", "DispatchReport", "DispatchStatus", "Dispatcher", "DryRun", "PauseReason",
    "Plan",
    "dry_run", "format_status", "issue_status", "plan_dispatch", "send_review_copies",
]
