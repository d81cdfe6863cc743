"""A sender that prints: one summary line per message, or (``full = true``) all of it."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from email import policy
from email.parser import BytesHeaderParser
from typing import IO, Any, ClassVar

from pbtp_mailer.senders._options import Options, per_recipient
from pbtp_mailer.senders.base import BaseSender, Outgoing, SenderSpec, SendResult, Status

__all__ = ["ConsoleSender"]


class ConsoleSender(BaseSender):
    kind: ClassVar[str] = "console"
    OPTIONS: ClassVar[frozenset[str]] = frozenset({"full", "stream", "batch_size"})

    def __init__(self, spec: SenderSpec) -> None:
        super().__init__(spec)
        opts = Options(spec, self.OPTIONS)
        self.full = opts.flag("full", False)
        self.stream: IO[str] | None = opts.get("stream")
        self.batch_size = opts.concurrency("batch_size", default=100)
        self.count = 0

    def _out(self) -> IO[str]:
        # looked up at each call so that redirected/captured stdout is honoured
        return self.stream if self.stream is not None else sys.stdout

    @staticmethod
    def summary(msg: Outgoing) -> str:
        head = msg.data.split(b"\r\n\r\n", 1)[0]
        parsed: Any = BytesHeaderParser(policy=policy.default).parsebytes(head)
        subject = str(parsed.get("subject", "")).replace("\n", " ")
        size = len(msg.data)
        shown = f"{size / 1024:.1f} KB" if size >= 1024 else f"{size} B"
        return f"{msg.mail_from} -> {', '.join(msg.rcpt_to)} | {subject} | {shown}"

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]:
        out = self._out()
        results: list[SendResult] = []
        for msg in batch:
            self.count += 1
            pid = f"console-{self.count}"
            if self.full:
                out.write(f"--- message {self.count}: {msg.mail_from} -> "
                          f"{', '.join(msg.rcpt_to)}\n")
                out.write(msg.data.replace(b"\r\n", b"\n").decode("utf-8", "replace"))
                out.write("\n")
            else:
                out.write(self.summary(msg) + "\n")
            results.extend(per_recipient(msg, Status.ACCEPTED, 250, "printed", pid))
        out.flush()
        return results
