"""Datetimes read back from the database are UTC (SQLite returns them naive)."""

from __future__ import annotations

import datetime as dt

__all__ = ["aware"]


def aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value
