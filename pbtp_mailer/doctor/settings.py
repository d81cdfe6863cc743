"""``[doctor]``: where bounces go, which resolver to ask, how long DNS answers are cached.

    [doctor]
    bounce_domain = "bounces.example.org"   # envelope (Return-Path) domain; default: From's
    bounces_by_mail = true                  # bounces come back by mail: check its MX
    nameserver = "127.0.0.1:53"             # default: the system's resolvers
    timeout = 5.0                           # seconds per DNS question
    cache_seconds = 3600                    # the send gate's DNS cache
    large_list = 5000                       # p=none is a warning from this many subscribers
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DoctorSettings"]


class DoctorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bounce_domain: str | None = None
    bounces_by_mail: bool = False
    nameserver: str | None = None
    timeout: float = Field(default=5.0, gt=0, le=60)
    cache_seconds: int = Field(default=3600, ge=0)
    large_list: int = Field(default=5000, ge=0)
