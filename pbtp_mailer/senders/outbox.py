"""A sender that writes each message into a Maildir: the default for dry runs.

Any mail client (mutt -f, Thunderbird with a Maildir account, ``python -m
mailbox``) can read the result. Each message becomes one file in ``new/``,
written to ``tmp/`` first and renamed (the Maildir way, so readers never see
half a message), with LF line ends as Maildir expects and the envelope in
``Return-Path`` and ``X-Envelope-To``. ``provider_id`` is the file name.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from pbtp_mailer.errors import SendPermanentError, SendTransientError
from pbtp_mailer.senders._options import BatchFailure, Options, finish_batch, per_recipient
from pbtp_mailer.senders.base import BaseSender, Outgoing, SenderSpec, SendResult, Status

__all__ = ["OutboxSender", "DEFAULT_PATH"]

DEFAULT_PATH = ".pbtp-mailer/outbox"


class OutboxSender(BaseSender):
    kind: ClassVar[str] = "outbox"
    OPTIONS: ClassVar[frozenset[str]] = frozenset({"path", "fsync", "batch_size"})
    _seq = itertools.count(1)

    def __init__(self, spec: SenderSpec) -> None:
        super().__init__(spec)
        opts = Options(spec, self.OPTIONS)
        self.path: Path = opts.path("path", DEFAULT_PATH) or Path(DEFAULT_PATH)
        self.fsync = opts.flag("fsync", False)
        self.batch_size = opts.concurrency("batch_size", default=100)
        self._host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")

    def open(self) -> None:
        try:
            for sub in ("tmp", "new", "cur"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SendPermanentError(
                f"outbox {self.path}: cannot create Maildir: {exc.strerror}"
            ) from None

    def _write(self, msg: Outgoing) -> str:
        key = f"{time.time_ns()}.P{os.getpid()}Q{next(self._seq)}.{self._host}"
        envelope = (
            f"Return-Path: <{msg.mail_from}>\nX-Envelope-To: {', '.join(msg.rcpt_to)}\n"
        ).encode()
        tmp = self.path / "tmp" / key
        try:
            with open(tmp, "xb") as fh:
                fh.write(envelope)
                fh.write(msg.data.replace(b"\r\n", b"\n"))
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.rename(tmp, self.path / "new" / key)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk leaves no half message in tmp/
            raise
        return key

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]:
        outcomes: list[list[SendResult] | BatchFailure] = []
        for msg in batch:
            try:
                key = self._write(msg)
            except OSError as exc:
                outcomes.append(BatchFailure(SendTransientError(
                    f"outbox {self.path}: cannot write: {exc.strerror or exc}"
                )))
                continue
            outcomes.append(per_recipient(msg, Status.ACCEPTED, 250, "written", key))
        return finish_batch(batch, outcomes)
