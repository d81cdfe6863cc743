"""The values the ledger hands out and takes back.

``DispatchInfo`` is one (issue, list) dispatch; ``Claimed`` a recipient row a
run holds; ``Decision`` what the dispatcher decided for a claimed row once
the sender answered; ``Reservation`` what one reservation produced;
``PauseReason`` why a dispatch stopped early, stored as a column (never a
sentence to match later).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["DispatchInfo", "Claimed", "Decision", "Reservation", "PauseReason", "content_hash"]


class PauseReason(enum.StrEnum):
    """Why a run stopped before its work was done (``dispatches.pause_reason``)."""

    #: recipients kept failing one after another (a person decides before more are tried)
    CONSECUTIVE_FAILURES = "consecutive_failures"
    #: the sender could not be used at all (server down, TLS, credentials)
    SENDER_UNAVAILABLE = "sender_unavailable"
    #: the server refused the message itself (size, content): nobody's address is at fault
    MESSAGE_REJECTED = "message_rejected"
    #: a signal or a caller asked the run to stop
    INTERRUPTED = "interrupted"
    #: the sender's per-minute/hour/day quota is used up
    QUOTA = "quota"


def content_hash(subject: str, text: str, html: str) -> str:
    h = hashlib.sha256()
    for part in (subject, text, html):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class DispatchInfo:
    id: int
    issue_id: str
    list_id: int | None
    list_name: str
    issue_file: str
    sender: str
    content_hash: str
    subject: str
    preheader: str
    language: str
    frozen_text: str
    frozen_html: str
    state: str
    note: str
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None
    pause_reason: PauseReason | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    subscriber_id: int
    list_id: int
    email: str
    name: str | None
    attrs: Mapping[str, str]  # read-only: rows with the same attributes share one
    message_id: str
    attempts: int
    first_attempt_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Decision:
    """What the dispatcher decided for one claimed row."""

    id: int
    state: str  # sent | deferred | failed | rejected | skipped
    code: int | None = None
    text: str = ""
    provider_id: str | None = None
    next_attempt_at: dt.datetime | None = None
    suppress_as: str | None = None  # 'bounced' etc. (for permanent failures)
    email: str = ""


@dataclass
class Reservation:
    """Rows one ``Ledger.reserve`` took, and how many it skipped as suppressed."""

    claimed: list[Claimed] = field(default_factory=list)
    skipped: int = 0
