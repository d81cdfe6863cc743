"""Helpers for tests that run real dispatcher processes against a recording SMTP server."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any


def env_for(world: Any) -> dict[str, str]:
    """This environment plus the world's (secret, database), without a stray config."""
    env = dict(os.environ)
    env.pop("PBTP_MAILER_DATABASE_URL", None)
    env.pop("PBTP_MAILER_CONFIG", None)
    env.update(world.env)
    return env


def delivered(server: Any) -> Counter[str]:
    """How many times each recipient was delivered (answered 250) by the server."""
    return Counter(r for m in server.messages for r in m.rcpt_tos)


def ledger_rows(store: Any) -> dict[str, str]:
    """email -> delivery state, for every ledger row."""
    from sqlalchemy import text

    with store.engine.connect() as conn:
        return dict(conn.execute(text("select email, state from deliveries")).all())
