"""A per-IP limit on POSTs, in memory: the IP is never written anywhere.

A sliding window of the last hour per address, in one dict guarded by a
lock (waitress serves from several threads). The table is bounded: past
``max_ips`` addresses the oldest are dropped, so a flood of spoofed
sources costs memory once, not forever. A restart forgets everything,
which is fine for a limit meant to slow down form spam.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

__all__ = ["IPLimiter"]


class IPLimiter:
    def __init__(self, per_hour: int, *, max_ips: int = 10_000,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.per_hour = per_hour
        self.max_ips = max_ips
        self.clock = clock
        self._seen: OrderedDict[str, deque[datetime]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, ip: str) -> bool:
        """Count one request from ``ip``; False when it already made ``per_hour`` this hour."""
        now = self.clock()
        start = now - timedelta(hours=1)
        with self._lock:
            times = self._seen.pop(ip, None) or deque()
            while times and times[0] <= start:
                times.popleft()
            self._seen[ip] = times
            while len(self._seen) > self.max_ips:
                self._seen.popitem(last=False)
            if len(times) >= self.per_hour:
                return False
            times.append(now)
            return True
