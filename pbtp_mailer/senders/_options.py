"""Typed access to a sender's options, secrets from the environment, masking.

Options come from a ``[senders.NAME]`` table or a sender URL's query string,
so the same key may arrive as ``8`` or ``"8"``: the getters accept both.
Secrets are never options, only the *names* of environment variables
(``password_env``, ``api_key_env``, ``token_env``) read from ``spec.environ``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pbtp_mailer.errors import ConfigError, SendPermanentError
from pbtp_mailer.senders.base import Outgoing, SenderSpec, SendResult, Status

__all__ = ["Options", "mask", "per_recipient", "finish_batch", "BatchFailure"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
#: options every sender accepts (the registry and DKIM wrapper read them)
COMMON = frozenset({
    "kind", "concurrency", "dkim_selector", "dkim_domain", "dkim_key_file",
    "dkim_ed25519_key_file", "dkim_ed25519_selector",
})


def mask(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret replaced by ``****`` (empty secrets are ignored)."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "****")
    return text


class Options:
    """The options of one sender spec, with the place to name in errors."""

    def __init__(self, spec: SenderSpec, known: Iterable[str] = ()) -> None:
        self.spec = spec
        self.where = f"sender '{spec.name}'"
        self.raw = dict(spec.options)
        known_set = frozenset(known) | COMMON
        if known:
            unknown = sorted(k for k in self.raw if k not in known_set)
            if unknown:
                raise ConfigError(
                    f"{self.where}: unknown option '{unknown[0]}' "
                    f"(known: {', '.join(sorted(known_set - COMMON))})"
                )

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.raw.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{self.where}: '{key}' must be a string")
        if any(c in value for c in "\r\n\0"):
            raise ConfigError(f"{self.where}: '{key}' must not contain CR, LF or NUL")
        return value

    def integer(self, key: str, default: int | None = None, *, minimum: int = 0,
                maximum: int = 10**9) -> int | None:
        value = self.raw.get(key, default)
        if value is None:
            return None
        try:
            if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
                raise ValueError
            number = int(value)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{self.where}: '{key}' must be an integer, got {value!r}") from None
        if not minimum <= number <= maximum:
            raise ConfigError(f"{self.where}: '{key}' must be between {minimum} and {maximum}")
        return number

    def number(self, key: str, default: float, *, maximum: float = 3600.0) -> float:
        """A finite number in ``(0, maximum]`` (seconds, mostly): never inf or nan."""
        value = self.raw.get(key, default)
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{self.where}: '{key}' must be a number, got {value!r}") from None
        if not math.isfinite(number) or number <= 0 or number > maximum:
            raise ConfigError(f"{self.where}: '{key}' must be a number greater than 0 "
                              f"and at most {maximum:g}, got {value!r}")
        return number

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.raw.get(key, default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ConfigError(f"{self.where}: '{key}' must be true or false, got {value!r}")

    def path(self, key: str, default: str | None = None) -> Path | None:
        value = self.text(key, default)
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else Path(self.spec.base_dir) / p

    def env_name(self, key: str, default: str | None = None) -> str | None:
        """The environment variable named by ``key`` (e.g. ``password_env``)."""
        return self.text(key, default)

    def secret(self, key: str, default_env: str | None = None) -> tuple[str | None, str | None]:
        """``(value, env_name)`` of the secret named by option ``key``."""
        name = self.env_name(key, default_env)
        if not name:
            return None, None
        value = self.spec.environ.get(name) or None
        return value, name

    def concurrency(self, *aliases: str, default: int) -> int:
        for key in ("concurrency", *aliases):
            if self.raw.get(key) is not None:
                return self.integer(key, minimum=1, maximum=1000) or default
        return default


def per_recipient(
    msg: Outgoing,
    status: Status,
    code: int | None = None,
    text: str = "",
    provider_id: str | None = None,
    retry_after: float | None = None,
) -> list[SendResult]:
    """The same outcome for every recipient of ``msg``."""
    return [
        SendResult(msg, rcpt, status, code, text, provider_id, retry_after)
        for rcpt in msg.rcpt_to
    ]


class BatchFailure(Exception):
    """Internal: one message could not be tried at all because of ``error``.

    ``finish_batch`` raises ``error`` when no message of the batch reached a
    server, and otherwise turns it into per-recipient results, so that
    results already obtained are never lost.
    """

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def finish_batch(
    batch: Sequence[Outgoing], outcomes: Sequence[list[SendResult] | BatchFailure]
) -> list[SendResult]:
    """Flatten per-message outcomes in batch order (see ``BatchFailure``)."""
    failures = [o for o in outcomes if isinstance(o, BatchFailure)]
    if failures and len(failures) == len(outcomes):
        # nothing reached a server: one error for the batch, permanent first
        for f in failures:
            if isinstance(f.error, SendPermanentError):
                raise f.error
        raise failures[0].error
    results: list[SendResult] = []
    for msg, outcome in zip(batch, outcomes, strict=True):
        if isinstance(outcome, BatchFailure):
            # never tried while others were: transient, whatever the error, so a
            # session or account problem is never blamed on these recipients
            err = outcome.error
            results.extend(per_recipient(
                msg, Status.TRANSIENT, getattr(err, "code", None), str(err),
                retry_after=getattr(err, "retry_after", None),
            ))
        else:
            results.extend(outcome)
    return results
