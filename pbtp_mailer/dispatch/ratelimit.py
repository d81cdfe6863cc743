"""Rate limits per sender: a token bucket per second, fixed windows per minute/hour/day.

The per-second bucket is shared by every connection of one dispatcher (it
gates how many messages go into each batch). Minute, hour and day counts are
kept in the store's ``rate_usage`` table, so successive cron runs together
respect a provider's daily quota. Time is injected (``clock`` for the bucket,
``now`` for the windows) so tests need not sleep for real.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pbtp_mailer.errors import ConfigError

__all__ = ["Limits", "TokenBucket", "parse_rate", "window_start", "WINDOWS"]

WINDOWS = {"minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*$")
_UNIT = {"s": "second", "sec": "second", "second": "second", "m": "minute", "min": "minute",
         "minute": "minute", "h": "hour", "hour": "hour", "d": "day", "day": "day"}


@dataclass(frozen=True)
class Limits:
    per_second: float | None = None
    per_minute: int | None = None
    per_hour: int | None = None
    per_day: int | None = None

    @property
    def windows(self) -> dict[str, int]:
        out = {}
        for name in WINDOWS:
            value = getattr(self, f"per_{name}")
            if value is not None:
                out[name] = int(value)
        return out

    @classmethod
    def from_options(cls, options: dict[str, Any], where: str) -> Limits:
        """``rate = "50/s"`` and/or ``rate_per_second|minute|hour|day = N`` in a sender table."""
        values: dict[str, float | None] = {}
        if "rate" in options:
            unit, number = parse_rate(str(options["rate"]), where)
            values[unit] = number
        for unit in ("second", "minute", "hour", "day"):
            key = f"rate_per_{unit}"
            if key in options:
                try:
                    number = float(options[key])
                except (TypeError, ValueError):
                    raise ConfigError(f"{where}: '{key}' must be a number") from None
                if number <= 0:
                    raise ConfigError(f"{where}: '{key}' must be positive")
                values[unit] = number
        def whole(unit: str) -> int | None:
            value = values.get(unit)
            return int(value) if value else None

        return cls(per_second=values.get("second"), per_minute=whole("minute"),
                   per_hour=whole("hour"), per_day=whole("day"))


RATE_KEYS = ("rate", "rate_per_second", "rate_per_minute", "rate_per_hour", "rate_per_day")


def parse_rate(text: str, where: str = "rate") -> tuple[str, float]:
    """``"50/s"`` -> ``("second", 50.0)``; also /min, /h, /day."""
    m = _RATE.match(text)
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(f"{where}: rate {text!r} must look like '50/s', '1000/h' or '50000/day'")
    return _UNIT[m.group(2)], float(m.group(1))


def window_start(now: dt.datetime, window: str) -> dt.datetime:
    """Start of the fixed UTC window holding ``now``."""
    now = now.astimezone(dt.UTC)
    if window == "minute":
        return now.replace(second=0, microsecond=0)
    if window == "hour":
        return now.replace(minute=0, second=0, microsecond=0)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


class TokenBucket:
    """At most ``rate`` tokens per second, bursts of at most ``burst``."""

    def __init__(self, rate: float, burst: float, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate
        self.burst = max(1.0, burst)
        self.clock = clock
        self.sleep = sleep
        self.tokens = 1.0  # start nearly empty: no burst at start-up
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, want: int) -> int:
        """Wait until at least one token is there; take up to ``want`` whole tokens."""
        want = max(1, min(want, int(self.burst)))
        for _ in range(10_000):  # bounded; each pass sleeps until a token is due
            self._refill()
            if self.tokens >= 1:
                n = min(want, int(self.tokens))
                self.tokens -= n
                return n
            self.sleep((1 - self.tokens) / self.rate)
        raise RuntimeError("token bucket did not refill")  # pragma: no cover
