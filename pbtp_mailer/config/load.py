"""Find pbtp-mailer.toml, parse it, validate it against the declared tables.

The file is found by ``--config PATH``, else ``$PBTP_MAILER_CONFIG``, else
``pbtp-mailer.toml`` in the working directory. Secrets are never read from
the file: it only names the environment variables that hold them.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from pydantic import TypeAdapter, ValidationError

from pbtp_mailer.config.fields import Line
from pbtp_mailer.config.messages import file_error
from pbtp_mailer.config.places import Locator, Places, toml_places
from pbtp_mailer.config.settings import (
    _FORBID,
    SECTIONS,
    Config,
    DatabaseTable,
    DispatchSettings,
    Newsletter,
    SenderTable,
)
from pbtp_mailer.errors import ConfigError

__all__ = ["CONFIG_FILENAME", "ENV_CONFIG", "ENV_DATABASE_URL", "find_config", "load_config",
           "config_from_dict"]

CONFIG_FILENAME = "pbtp-mailer.toml"
ENV_CONFIG = "PBTP_MAILER_CONFIG"
ENV_DATABASE_URL = "PBTP_MAILER_DATABASE_URL"


@dataclass(frozen=True, kw_only=True)
class _File:
    """The whole file but the feature sections (``SECTIONS``), which features validate."""

    __pydantic_config__: ClassVar[Any] = _FORBID

    newsletter: Newsletter
    database: DatabaseTable = field(default_factory=DatabaseTable)
    default_sender: Line | None = None
    senders: dict[str, SenderTable] = field(default_factory=dict)
    dispatch: DispatchSettings = field(default_factory=DispatchSettings)


_TABLES: dict[str, Any] = {"newsletter": Newsletter, "database": DatabaseTable,
                           "dispatch": DispatchSettings, "senders.*": SenderTable,
                           "senders": dict}


@cache
def _adapter() -> TypeAdapter[_File]:
    return TypeAdapter(_File)


def find_config(explicit: str | os.PathLike[str] | None = None,
                environ: Mapping[str, str] | None = None,
                cwd: Path | None = None) -> Path | None:
    env = os.environ if environ is None else environ
    if explicit:
        p = Path(explicit)
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found")
        return p
    if env.get(ENV_CONFIG):
        p = Path(env[ENV_CONFIG])
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found (from ${ENV_CONFIG})")
        return p
    p = (cwd or Path.cwd()) / CONFIG_FILENAME
    return p if p.is_file() else None


def load_config(path: str | os.PathLike[str] | None = None,
                environ: Mapping[str, str] | None = None,
                cwd: Path | None = None) -> Config:
    """Load the config file (found as documented above) merged with the environment."""
    env = dict(os.environ if environ is None else environ)
    found = find_config(path, env, cwd)
    if found is None:
        raise ConfigError(
            f"no {CONFIG_FILENAME} in {cwd or Path.cwd()}",
            hint=f"pass --config PATH or set ${ENV_CONFIG}",
        )
    data = found.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(f"{found}:{line}:{col}: not UTF-8 (byte 0x{data[exc.start]:02x}); "
                          "save the file as UTF-8") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{found}: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise ConfigError(f"{found}: arrays or tables nested too deeply") from None
    except ValueError:  # int() past Python's 4,300-digit limit, raised outside TOMLDecodeError
        where = next((f"{n}:" for n, line in enumerate(text.splitlines(), 1)
                      if re.search(r"\d{4300}", line)), "")
        raise ConfigError(f"{found}:{where} a number with more than 4,300 digits") from None
    return config_from_dict(raw, found, env, text=text)


def config_from_dict(raw: dict[str, Any], path: Path | None,
                     environ: Mapping[str, str], *, text: str | None = None) -> Config:
    """Validate parsed TOML (``text``, when given, locates the errors)."""
    places: Places = toml_places(text) if text is not None else {}
    base_dir = path.parent.resolve() if path else Path.cwd()
    place = Locator(path, places)
    core = {k: v for k, v in raw.items() if k not in SECTIONS}
    top = sorted([*(f.name for f in fields(_File)), *SECTIONS])
    try:
        parsed = _adapter().validate_python(core)
    except ValidationError as exc:
        raise file_error(place, exc, _TABLES, top) from None
    except RecursionError:
        raise ConfigError(f"{place()}: arrays or tables nested too deeply") from None
    for name in SECTIONS:
        if name in raw and not isinstance(raw[name], dict):
            raise ConfigError(f"{place(name)}: [{name}] must be a table")

    db_url = environ.get(ENV_DATABASE_URL) or parsed.database.url or ""
    if not db_url:
        p = Path(parsed.database.path)
        db_url = f"sqlite:///{p if p.is_absolute() else base_dir / p}"
    senders: dict[str, dict[str, Any]] = raw.get("senders", {})
    default_sender = parsed.default_sender or ("outbox" if not senders else next(iter(senders)))
    return Config(
        path=path,
        base_dir=base_dir,
        newsletter=parsed.newsletter,
        database_url=db_url,
        default_sender=default_sender,
        senders=senders,
        dispatch=parsed.dispatch,
        environ=environ,
        raw=raw,
        places=places,
    )
