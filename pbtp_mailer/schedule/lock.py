"""One ``dispatch-due`` at a time per project: an ``flock`` on a file in the data folder.

Why ``flock`` and not a pid file: the kernel holds the lock for the open
file, and drops it when the holder's last descriptor closes, which happens
when the process exits *for any reason*, ``kill -9`` and OOM included. So a
lock can never outlive its holder, and "stale lock" detection needs no
guessing from pids that the system may have reused. Taking over is safe
because the kernel grants the lock to exactly one waiter.

The file is never deleted: unlinking a lock file lets two processes lock two
different inodes under one name. Its content (``pid host started``) is only
a note for the busy message; a clean release empties it, so a non-empty file
found by the next holder means the previous one died holding it.

The descriptor is close-on-exec (PEP 446), so no child inherits the lock.
``flock`` is local to one machine: keep the data folder on a local file
system. Two machines sharing one PostgreSQL still never double-send (the
ledger claims rows atomically), they just do not wait for each other.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from pbtp_mailer.errors import MailerError

__all__ = ["RunLock", "LockBusyError", "Holder"]


@dataclass(frozen=True)
class Holder:
    """What a lock file says about whoever holds (or held) it."""

    pid: int | None
    host: str
    started: str

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        parts = text.split()
        if len(parts) < 3:
            return None
        pid = int(parts[0]) if parts[0].isdigit() else None
        return cls(pid, parts[1], parts[2])

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}, since {self.started}"


class LockBusyError(MailerError):
    """Another process holds the lock (not an error for cron: exit 0)."""

    exit_code = 0

    def __init__(self, path: Path, holder: Holder | None) -> None:
        who = str(holder) if holder else "holder unknown"
        super().__init__(f"another dispatch-due is running ({who}; lock {path})")
        self.path = path
        self.holder = holder


class RunLock:
    """``with RunLock(path): ...`` or ``acquire()``/``release()``; never blocks."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        #: the previous holder, when it died holding the lock (we took it over)
        self.took_over: Holder | None = None

    def acquire(self, now: dt.datetime | None = None) -> RunLock:
        """Take the lock or raise ``LockBusyError`` at once."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = Holder.parse(_read(fd))
            os.close(fd)
            raise LockBusyError(self.path, holder) from None
        except BaseException:
            os.close(fd)
            raise
        left = _read(fd)
        self.took_over = Holder.parse(left) if left.strip() else None
        when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        note = f"{os.getpid()} {socket.gethostname()} {when:%Y-%m-%dT%H:%M:%SZ}\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, note.encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # a clean exit: the next holder finds an empty file
        finally:
            os.close(fd)  # closing drops the flock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire() if self._fd is None else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def _read(fd: int) -> str:
    try:
        return os.pread(fd, 512, 0).decode("utf-8", "replace")
    except OSError:
        return ""
