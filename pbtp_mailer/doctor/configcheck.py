"""[config]: placeholders (example.org) left in the config, a missing postal
address (CAN-SPAM wants a valid one in every message), no PBTP_MAILER_SECRET.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pbtp_mailer.doctor.report import Check
from pbtp_mailer.errors import ConfigError

if TYPE_CHECKING:
    from pbtp_mailer.config import Config

__all__ = ["check_config", "PLACEHOLDERS"]

PLACEHOLDERS = ("example.org", "example.com", "example.net", "placeholder")


def _strings(table: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(table, dict):
        for key, value in table.items():
            yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(table, str):
        yield path, table


def check_config(config: Config) -> list[Check]:
    where = str(config.path) if config.path else "the config"
    out = []
    found = [key for key, value in _strings(
        {k: config.raw.get(k) for k in ("newsletter", "senders", "doctor")}, "")
        if any(p in value.lower() for p in PLACEHOLDERS)]
    if found:
        out.append(Check("config", "fail", f"{where}: placeholder values left in "
                         f"{', '.join(found)}", "replace every example.org / placeholder value "
                         "with the program's real one"))
    else:
        out.append(Check("config", "ok", f"{where}: no placeholder values"))
    postal = config.newsletter.postal_address.strip()
    if len(postal) < 10 or "placeholder" in postal.lower():
        out.append(Check("config", "fail", f"{where}: [newsletter] postal_address {postal!r} is "
                         "not a postal address (CAN-SPAM requires one in every message)",
                         "set [newsletter] postal_address to the program's mailing address"))
    try:
        config.secret()
        out.append(Check("config", "ok", "PBTP_MAILER_SECRET is set"))
    except ConfigError as exc:
        out.append(Check("config", "fail", str(exc), exc.hint or ""))
    return out
