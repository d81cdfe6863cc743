"""``bounces ingest``: returned mail from a file, an mbox, a Maildir or stdin.

``read_messages`` yields ``(where, bytes)`` for each message of the source
(a Postfix ``pipe`` transport or a ``.forward`` hands one message on stdin);
``ingest`` parses each one, records the events in batches (one transaction
per ``batch`` messages, so a Maildir of 100,000 DSNs is quick and memory
stays flat) and reports every message through ``on_item``. A message that
cannot be read is reported and skipped; it never stops the run.
"""

from __future__ import annotations

import datetime as dt
import mailbox
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pbtp_mailer.errors import FeedbackError
from pbtp_mailer.feedback.events import FeedbackEvent, Ignored
from pbtp_mailer.feedback.mail import Parsed, Unrecognised, parse_message
from pbtp_mailer.feedback.policy import Policy

if TYPE_CHECKING:
    from pbtp_mailer.feedback.verp import Verp
    from pbtp_mailer.store import Store
    from pbtp_mailer.store.feedback import Recorded

__all__ = ["IngestItem", "IngestReport", "read_messages", "ingest", "MAX_MESSAGE"]

MAX_MESSAGE = 25 * 1024 * 1024


@dataclass
class IngestItem:
    where: str
    parsed: Parsed
    recorded: list[Recorded] = field(default_factory=list)


@dataclass
class IngestReport:
    messages: int = 0
    recorded: int = 0  # new events
    duplicates: int = 0
    unmatched: int = 0  # no address and no known copy (a redacted complaint, an old token)
    suppressed: int = 0
    ignored: int = 0
    unrecognised: int = 0

    def summary(self) -> str:
        return (f"{self.messages} message(s): {self.recorded} event(s) recorded, "
                f"{self.duplicates} already known, {self.unmatched} unmatched, "
                f"{self.suppressed} address(es) suppressed, "
                f"{self.ignored} ignored, {self.unrecognised} not recognised")


def _is_mbox(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(5) == b"From "


def _maildir(path: Path) -> Iterator[tuple[str, bytes]]:
    """new/ then cur/, in directory order: a sorted listing (or mailbox.Maildir's table
    of contents) of 100,000 files would cost memory in proportion; this does not."""
    for sub in ("new", "cur"):
        with os.scandir(path / sub) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                try:
                    with open(entry.path, "rb") as fh:
                        data = fh.read(MAX_MESSAGE + 1)
                except OSError:  # removed meanwhile by another reader
                    continue
                yield f"{path}/{sub}/{entry.name}", data


def read_messages(source: str, stdin: IO[bytes] | None = None) -> Iterator[tuple[str, bytes]]:
    """Messages of ``source``: '-' (stdin), a Maildir folder, an mbox file or one message."""
    if source == "-":
        if stdin is None:
            raise FeedbackError("no standard input to read")
        yield "<stdin>", stdin.read(MAX_MESSAGE + 1)
        return
    path = Path(source)
    if path.is_dir():
        if not (path / "cur").is_dir() or not (path / "new").is_dir():
            raise FeedbackError(f"{path}: a folder but not a Maildir (no cur/ and new/)")
        yield from _maildir(path)
        return
    if not path.is_file():
        raise FeedbackError(f"{path}: no such file or Maildir")
    if _is_mbox(path):
        mbox = mailbox.mbox(str(path), factory=None, create=False)
        try:
            for n, key in enumerate(mbox.iterkeys(), 1):
                yield f"{path}#{n}", mbox.get_bytes(key)
        finally:
            mbox.close()
        return
    yield str(path), path.read_bytes()


def ingest(store: Store, messages: Iterable[tuple[str, bytes]], *, verp: Verp | None,
           policy: Policy, on_item: Callable[[IngestItem], None] | None = None,
           clock: Callable[[], dt.datetime] | None = None, batch: int = 500,
           envelope_to: str | None = None, jobs: int = 1) -> IngestReport:
    """Parse and record every message; events are written ``batch`` messages at a time.

    ``jobs > 1`` parses in that many worker processes while this one records
    (a bounded number of batches in flight, so memory stays flat).
    """
    now = clock or (lambda: dt.datetime.now(dt.UTC))
    report = IngestReport()
    for items in _parsed(messages, batch, verp, now, envelope_to, jobs):
        report.messages += len(items)
        _flush(store, items, policy, report, on_item)
    return report


def _chunks(messages: Iterable[tuple[str, bytes]], size: int) -> Iterator[list[tuple[str, bytes]]]:
    chunk: list[tuple[str, bytes]] = []
    for m in messages:
        chunk.append(m)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def parse_chunk(chunk: list[tuple[str, bytes]], verp: Verp | None, now: dt.datetime,
                envelope_to: str | None) -> list[IngestItem]:
    """Parse a batch of messages (runs in a worker process with ``jobs > 1``)."""
    out = []
    for where, data in chunk:
        if len(data) > MAX_MESSAGE:
            parsed: Parsed = Unrecognised(f"larger than {MAX_MESSAGE // (1024 * 1024)} MiB")
        else:
            parsed = parse_message(data, verp=verp, now=now, envelope_to=envelope_to)
        out.append(IngestItem(where, parsed))
    return out


def _parsed(messages: Iterable[tuple[str, bytes]], batch: int, verp: Verp | None,
            now: Callable[[], dt.datetime], envelope_to: str | None,
            jobs: int) -> Iterator[list[IngestItem]]:
    if jobs <= 1:
        for chunk in _chunks(messages, batch):
            yield parse_chunk(chunk, verp, now(), envelope_to)
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    # spawn, not fork: the caller may run threads (a fork copies their locks)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        flying: deque[Future[list[IngestItem]]] = deque()
        for chunk in _chunks(messages, max(1, batch // jobs)):
            flying.append(pool.submit(parse_chunk, chunk, verp, now(), envelope_to))
            if len(flying) > jobs * 2:
                yield flying.popleft().result()
        while flying:
            yield flying.popleft().result()


def _flush(store: Store, items: list[IngestItem], policy: Policy, report: IngestReport,
           on_item: Callable[[IngestItem], None] | None) -> None:
    events: list[FeedbackEvent] = [e for it in items if isinstance(it.parsed, list)
                                   for e in it.parsed]
    results = iter((store.feedback.record(events, policy) or []) if events else [])
    for it in items:
        if isinstance(it.parsed, list):
            it.recorded = [next(results) for _ in it.parsed]
            for r in it.recorded:
                report.recorded += r.new
                report.duplicates += not r.new and bool(r.email)
                report.unmatched += not r.email
                report.suppressed += r.suppressed_as is not None
        elif isinstance(it.parsed, Ignored):
            report.ignored += 1
        else:
            report.unrecognised += 1
        if on_item is not None:
            on_item(it)
