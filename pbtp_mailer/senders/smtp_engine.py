"""Many SMTP sessions driven by one ``selectors`` loop in the calling thread.

A *job* is a generator that does one session's work (set-up, transactions,
QUIT) on non-blocking sockets and yields ``READ`` or ``WRITE`` when its
socket would block. Its *channel* (the ``SMTPConnection``) shows the socket
(its stream's) and holds the deadline of the step in progress. ``run`` resumes a job when its
socket is ready, throws ``Expired`` into it when its deadline passes, and
returns what every job returned. A job may also yield a float: "resume me
after this many seconds" (a streaming session waiting for its next message;
its socket, if any, stays registered, and the job resumes early if the
server speaks). An ``Engine`` keeps its selector, and the sessions'
registrations in it, from one run to the next.

Why not asyncio: at loopback speed an SMTP transaction is a handful of
system calls, and coroutines, futures and the hand-offs between the caller's
thread and a loop thread cost more CPU than those (~110-150 us per message
against ~40 us here). A generator resumed by a selector costs a microsecond.
"""

from __future__ import annotations

import selectors
import socket
from collections.abc import Generator, Sequence
from time import monotonic
from typing import Any, Protocol, TypeVar

__all__ = ["READ", "WRITE", "Expired", "Channel", "Job", "Engine"]

READ = selectors.EVENT_READ
WRITE = selectors.EVENT_WRITE

T = TypeVar("T")
#: yields READ or WRITE (or a pause in seconds, a float), returns its result
Job = Generator[int | float, None, T]


class Expired(Exception):
    """Thrown into a job at its ``yield`` when its channel's deadline has passed."""


class Channel(Protocol):
    #: ``time.monotonic()`` by which the job must make its next step
    deadline: float

    @property
    def sock(self) -> socket.socket | None:
        """The socket the job waits on (read-only: the channel owns it)."""

    def abort(self) -> None: ...


class _Task:
    __slots__ = ("channel", "job", "index", "sock", "events", "wake")

    def __init__(self, channel: Channel, job: Job[Any], index: int) -> None:
        self.channel = channel
        self.job = job
        self.index = index
        self.sock: socket.socket | None = None  # registered with the selector
        self.events = 0
        self.wake: float | None = None  # paused until this monotonic() time


class Engine:
    """One selector, reused run after run.

    A session's socket stays registered between runs (with no task), so a
    session used for many messages costs no ``epoll_ctl`` per message. Only
    one ``run`` at a time: threads sending at once each take their own engine.
    """

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()

    def close(self) -> None:
        self._selector.close()

    def run(self, jobs: Sequence[tuple[Channel, Job[T]]]) -> list[T]:
        """Run ``jobs`` to the end and return their results in order.

        An exception from a job propagates at once; the other jobs are closed
        and their channels aborted, since their sessions are mid-step.
        """
        selector = self._selector
        self._forget_others({channel.sock for channel, _ in jobs})
        results: list[Any] = [None] * len(jobs)
        waiting: dict[_Task, None] = {}
        try:
            for i, (channel, job) in enumerate(jobs):
                self._advance(_Task(channel, job, i), None, waiting, results)
            # every waiting job has a deadline, and on each turn a socket becomes
            # ready or a deadline passes: the loop ends
            while waiting:
                earliest = min(t.channel.deadline if t.wake is None else t.wake
                               for t in waiting)
                now = monotonic()
                if now < earliest:
                    for key, _ in selector.select(earliest - now):
                        if key.data is None:  # an idle session: the server spoke or left
                            selector.unregister(key.fileobj)
                        else:
                            self._advance(key.data, None, waiting, results)
                    now = monotonic()
                if now >= earliest:
                    for task in [t for t in waiting if t.wake is not None and t.wake <= now]:
                        self._advance(task, None, waiting, results)
                    for task in [t for t in waiting
                                 if t.wake is None and t.channel.deadline <= now]:
                        self._advance(task, Expired(), waiting, results)
        finally:
            for task in waiting:
                task.job.close()
                task.channel.abort()
        return results

    def _forget_others(self, socks: set[socket.socket | None]) -> None:
        """Drop registrations of sockets not in this run (closed ones, another thread's)."""
        for key in list(self._selector.get_map().values()):
            if key.fileobj not in socks:
                self._selector.unregister(key.fileobj)

    def _advance(self, task: _Task, error: Expired | None, waiting: dict[_Task, None],
                 results: list[Any]) -> None:
        """Resume ``task`` and register its socket for what it waits on next."""
        selector = self._selector
        task.wake = None
        try:
            events = task.job.send(None) if error is None else task.job.throw(error)
        except StopIteration as stop:
            results[task.index] = stop.value
            waiting.pop(task, None)
            self._park(task)
            return
        except BaseException:
            waiting.pop(task, None)
            self._park(task)
            task.channel.abort()
            raise
        if isinstance(events, float):  # a pause: a live socket stays registered
            if task.sock is not None and task.sock is not task.channel.sock:
                # its session was closed: drop the registration before the descriptor
                # number is reused by another session's new socket
                selector.unregister(task.sock)
                task.sock = None
                task.events = 0
            task.wake = monotonic() + events
            waiting[task] = None
            return
        sock = task.channel.sock
        assert sock is not None, "a job waited without a socket"
        if sock is not task.sock:
            # a new session, or the same descriptor wrapped in TLS
            if task.sock is not None:
                selector.unregister(task.sock)
            task.sock = sock
            try:
                selector.modify(sock, events, task)  # registered by an earlier run
            except KeyError:
                selector.register(sock, events, task)
        elif events != task.events:
            selector.modify(sock, events, task)
        task.events = events
        waiting[task] = None

    def _park(self, task: _Task) -> None:
        """A finished task: keep its live socket registered for reading, without a task."""
        sock = task.sock
        if sock is None:
            return
        task.sock = None
        if sock is task.channel.sock and task.events == READ:
            self._selector.modify(sock, READ, None)
        else:
            self._selector.unregister(sock)
