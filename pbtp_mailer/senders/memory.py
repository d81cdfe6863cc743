"""A sender that keeps messages in memory, with scriptable failures, for tests.

``fail = {"addr@example.org": [550, "5.1.1 no such user"]}`` makes that
recipient fail (4xx → transient, 5xx → permanent); ``reject = {"addr": [552,
"5.3.4 message too big"]}`` refuses the message to that recipient as a whole
(like a 5xx reply to DATA: no recipient's fault); ``down = true`` makes the
whole batch fail as if the server were unreachable, ``auth_fails = true`` as
if the credentials were wrong. Every instance appends to its own ``outbox``
and to the class-wide ``MemorySender.mailbox`` (clear it with ``reset()``).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

from pbtp_mailer.errors import SendPermanentError, SendTransientError
from pbtp_mailer.senders._options import Options
from pbtp_mailer.senders.base import BaseSender, Outgoing, SenderSpec, SendResult, Status

__all__ = ["MemorySender"]


class MemorySender(BaseSender):
    kind: ClassVar[str] = "memory"
    OPTIONS: ClassVar[frozenset[str]] = frozenset(
        {"fail", "reject", "down", "auth_fails", "batch_size"}
    )
    #: every message sent by any instance, in order: (message, provider ids)
    mailbox: ClassVar[list[Outgoing]] = []
    _ids = itertools.count(1)
    _lock = threading.Lock()

    def __init__(self, spec: SenderSpec | None = None, **options: Any) -> None:
        spec = spec or SenderSpec(name="memory", kind="memory", options=options)
        super().__init__(spec)
        opts = Options(spec, self.OPTIONS)
        self.batch_size = opts.concurrency("batch_size", default=100)
        fail = opts.get("fail") or {}
        self.fail: dict[str, tuple[int, str]] = {
            str(k).lower(): (int(v[0]), str(v[1])) for k, v in dict(fail).items()
        }
        reject = opts.get("reject") or {}
        self.reject: dict[str, tuple[int, str]] = {
            str(k).lower(): (int(v[0]), str(v[1])) for k, v in dict(reject).items()
        }
        self.down = opts.flag("down")
        self.auth_fails = opts.flag("auth_fails")
        self.outbox: list[Outgoing] = []
        self.opened = False
        self.closed = False

    @classmethod
    def reset(cls) -> None:
        with cls._lock:
            cls.mailbox.clear()

    def _check(self) -> None:
        if self.down:
            raise SendTransientError(f"{self.name}: connection refused (scripted)")
        if self.auth_fails:
            raise SendPermanentError(f"{self.name}: authentication failed (scripted)", code=535)

    def open(self) -> None:
        self._check()
        self.opened = True

    def close(self) -> None:
        self.closed = True

    def send(self, batch: Sequence[Outgoing]) -> list[SendResult]:
        self._check()
        results: list[SendResult] = []
        for msg in batch:
            delivered = False
            pid = f"memory-{next(self._ids)}"
            refused = next((self.reject[r.lower()] for r in msg.rcpt_to
                            if r.lower() in self.reject), None)
            if refused is not None:
                results.extend(SendResult(msg, rcpt, Status.REJECTED, *refused)
                               for rcpt in msg.rcpt_to)
                continue
            for rcpt in msg.rcpt_to:
                scripted = self.fail.get(rcpt.lower())
                if scripted is None:
                    delivered = True
                    results.append(SendResult(msg, rcpt, Status.ACCEPTED, 250, "OK", pid))
                else:
                    code, text = scripted
                    status = Status.TRANSIENT if 400 <= code < 500 else Status.PERMANENT
                    results.append(SendResult(msg, rcpt, status, code, text))
            if delivered:
                accepted = tuple(r for r in msg.rcpt_to if r.lower() not in self.fail)
                kept = Outgoing(msg.mail_from, accepted, msg.data, msg.ref)
                self.outbox.append(kept)
                with self._lock:
                    self.mailbox.append(kept)
        return results
