"""pbtp-mailer.toml plus the environment, turned into typed settings.

The file is found by ``--config PATH``, else ``$PBTP_MAILER_CONFIG``, else
``pbtp-mailer.toml`` in the working directory. Secrets are never read from
the file: it only names the environment variables that hold them.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pbtp_mailer.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import BaseModel

_M = TypeVar("_M", bound="BaseModel")

__all__ = [
    "CONFIG_FILENAME",
    "Newsletter",
    "DispatchSettings",
    "Config",
    "find_config",
    "load_config",
]

CONFIG_FILENAME = "pbtp-mailer.toml"
ENV_CONFIG = "PBTP_MAILER_CONFIG"
ENV_DATABASE_URL = "PBTP_MAILER_DATABASE_URL"
ENV_SECRET = "PBTP_MAILER_SECRET"
DEFAULT_DATA_DIR = ".pbtp-mailer"

#: tables owned by a feature, each read with ``Config.section(name, Model)``
SECTIONS = ("web", "feedback", "subscribe", "doctor")

_NEWSLETTER_REQUIRED = (
    "name",
    "from",
    "postal_address",
    "web_base_url",
    "unsubscribe_base_url",
    "list_id",
)


@dataclass(frozen=True)
class Newsletter:
    name: str
    from_addr: str
    reply_to: str | None
    postal_address: str
    web_base_url: str
    archive_url: str
    unsubscribe_base_url: str
    unsubscribe_mailto: str | None
    list_id: str
    language: str
    direction: str
    timezone: str
    message_id_domain: str
    feedback_id: str | None = None

    @property
    def from_address(self) -> str:
        """The bare address of From (envelope sender by default)."""
        return parseaddr(self.from_addr)[1]


@dataclass(frozen=True)
class DispatchSettings:
    max_attempts: int = 5
    max_age_hours: float = 72.0
    backoff_base_seconds: float = 60.0
    backoff_max_seconds: float = 3600.0
    in_run_retry_seconds: float = 30.0
    pause_after_consecutive_failures: int = 25
    suppress_on_permanent: bool = True
    stale_after_hours: float = 24.0
    doctor_gate_recipients: int = 1000


@dataclass(frozen=True)
class Config:
    path: Path | None
    base_dir: Path
    newsletter: Newsletter
    database_url: str
    default_sender: str
    senders: dict[str, dict[str, Any]]
    dispatch: DispatchSettings
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.base_dir / DEFAULT_DATA_DIR

    def secret(self) -> bytes:
        """The HMAC secret for unsubscribe tokens, from ``$PBTP_MAILER_SECRET``."""
        value = self.environ.get(ENV_SECRET, "")
        if len(value) < 16:
            raise ConfigError(
                f"{ENV_SECRET} is not set (or shorter than 16 characters): "
                "unsubscribe links are signed with it",
                hint=f"export {ENV_SECRET}=$(python -c 'import secrets;print(secrets.token_hex(32))')",
            )
        return value.encode()

    def section(self, name: str, model: type[_M]) -> _M:
        """The ``[name]`` table validated by a feature's own pydantic ``model``.

        A feature owns its settings (``feedback/settings.py`` …); the kernel
        only checks that the table's name is known (``SECTIONS``). A missing
        table gives the model's defaults; a bad value is one ``ConfigError``
        naming the file, the table and the field.
        """
        from pydantic import ValidationError

        where = str(self.path) if self.path else "config"
        table = self.raw.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{name}] must be a table")
        try:
            return model.model_validate(table)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or name
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = f"unknown key '{field}'"
                raise ConfigError(f"{where}: [{name}]: {msg}") from None
            raise ConfigError(f"{where}: [{name}]: '{field}': {msg}") from None

    def resolve(self, value: str | os.PathLike[str]) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p


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


def _str(table: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if value is None:
        raise ConfigError(f"{where}: '{key}' is required")
    if not isinstance(value, str):
        raise ConfigError(f"{where}: '{key}' must be a string")
    if any(c in value for c in "\r\n\0"):
        raise ConfigError(f"{where}: '{key}' must not contain CR, LF or NUL")
    return value


def _check_url(value: str, where: str, key: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ConfigError(f"{where}: '{key}' must be an http(s) URL, got {value!r}")
    return value


def _check_mailbox(value: str, where: str, key: str) -> str:
    name, addr = parseaddr(value)
    if not addr or "@" not in addr:
        raise ConfigError(f"{where}: '{key}' must be an e-mail address, got {value!r}")
    try:
        local, domain = addr.rsplit("@", 1)
        Address(display_name=name, username=local, domain=domain)
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"{where}: '{key}' is not a valid address: {exc}") from None
    return value


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
    text = found.read_bytes()
    try:
        raw = tomllib.loads(text.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{found}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{found}: {exc}") from None
    return config_from_dict(raw, found, env)


def config_from_dict(raw: dict[str, Any], path: Path | None,
                     environ: Mapping[str, str]) -> Config:
    where = str(path) if path else "config"
    known_top = {"newsletter", "database", "senders", "default_sender", "dispatch", *SECTIONS}
    for key in raw:
        if key not in known_top:
            raise ConfigError(f"{where}: unknown key '{key}' (known: {', '.join(sorted(known_top))})")
    nl = raw.get("newsletter")
    if not isinstance(nl, dict):
        raise ConfigError(f"{where}: [newsletter] table is required")
    nwhere = f"{where}: [newsletter]"
    for key in _NEWSLETTER_REQUIRED:
        _str(nl, key, nwhere)
    known_nl = set(_NEWSLETTER_REQUIRED) | {
        "reply_to", "archive_url", "unsubscribe_mailto", "language", "direction",
        "timezone", "message_id_domain", "feedback_id",
    }
    for key in nl:
        if key not in known_nl:
            raise ConfigError(f"{nwhere}: unknown key '{key}'")
    from_addr = _check_mailbox(_str(nl, "from", nwhere), nwhere, "from")
    reply_to = nl.get("reply_to")
    if reply_to is not None:
        reply_to = _check_mailbox(_str(nl, "reply_to", nwhere), nwhere, "reply_to")
    web = _check_url(_str(nl, "web_base_url", nwhere), nwhere, "web_base_url")
    archive = _check_url(_str(nl, "archive_url", nwhere, web), nwhere, "archive_url")
    unsub = _check_url(_str(nl, "unsubscribe_base_url", nwhere), nwhere, "unsubscribe_base_url")
    mailto = nl.get("unsubscribe_mailto")
    if mailto is not None:
        mailto = _check_mailbox(_str(nl, "unsubscribe_mailto", nwhere), nwhere, "unsubscribe_mailto")
    list_id = _str(nl, "list_id", nwhere)
    if not (list_id.endswith(">") and "<" in list_id):
        raise ConfigError(f"{nwhere}: 'list_id' must look like 'Name <list.example.org>'")
    tz = _str(nl, "timezone", nwhere, "UTC")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{nwhere}: 'timezone' {tz!r} is not an IANA time zone") from None
    direction = _str(nl, "direction", nwhere, "ltr")
    if direction not in ("ltr", "rtl"):
        raise ConfigError(f"{nwhere}: 'direction' must be 'ltr' or 'rtl'")
    from_domain = parseaddr(from_addr)[1].rpartition("@")[2]
    feedback_id = nl.get("feedback_id")
    if feedback_id is not None:
        feedback_id = _str(nl, "feedback_id", nwhere)
        parts = feedback_id.split(":")
        if not (2 <= len(parts) <= 4 and all(p and " " not in p for p in parts)
                and 5 <= len(parts[-1]) <= 15):
            raise ConfigError(f"{nwhere}: 'feedback_id' must look like 'campaign:list:type:SenderId' "
                              "(colon-separated, SenderId of 5-15 characters), got "
                              f"{feedback_id!r}")
    newsletter = Newsletter(
        name=_str(nl, "name", nwhere),
        from_addr=from_addr,
        reply_to=reply_to,
        postal_address=_str(nl, "postal_address", nwhere),
        web_base_url=web,
        archive_url=archive,
        unsubscribe_base_url=unsub,
        unsubscribe_mailto=mailto,
        list_id=list_id,
        language=_str(nl, "language", nwhere, "en"),
        direction=direction,
        timezone=tz,
        message_id_domain=_str(nl, "message_id_domain", nwhere, from_domain),
        feedback_id=feedback_id,
    )

    base_dir = path.parent.resolve() if path else Path.cwd()
    db = raw.get("database", {})
    if not isinstance(db, dict):
        raise ConfigError(f"{where}: [database] must be a table")
    db_url = environ.get(ENV_DATABASE_URL) or db.get("url") or ""
    if not db_url:
        db_path = db.get("path", f"{DEFAULT_DATA_DIR}/pbtp-mailer.sqlite3")
        p = Path(db_path)
        p = p if p.is_absolute() else base_dir / p
        db_url = f"sqlite:///{p}"

    senders = raw.get("senders", {})
    if not isinstance(senders, dict) or not all(isinstance(v, dict) for v in senders.values()):
        raise ConfigError(f"{where}: [senders.NAME] must be tables")
    for sname, table in senders.items():
        if "kind" not in table:
            raise ConfigError(f"{where}: [senders.{sname}]: 'kind' is required")
        for key in table:
            if key in ("password", "api_key", "token", "secret", "server_token"):
                raise ConfigError(
                    f"{where}: [senders.{sname}]: '{key}' must not be in the file; "
                    f"name an environment variable with '{key}_env' instead"
                )
    default_sender = raw.get("default_sender", "outbox" if not senders else next(iter(senders)))
    if not isinstance(default_sender, str):
        raise ConfigError(f"{where}: 'default_sender' must be a string")

    dispatch_raw = raw.get("dispatch", {})
    if not isinstance(dispatch_raw, dict):
        raise ConfigError(f"{where}: [dispatch] must be a table")
    defaults = DispatchSettings()
    kwargs: dict[str, Any] = {}
    for key, value in dispatch_raw.items():
        if not hasattr(defaults, key):
            raise ConfigError(f"{where}: [dispatch]: unknown key '{key}'")
        want = type(getattr(defaults, key))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise ConfigError(f"{where}: [dispatch]: '{key}' must be {want.__name__}")
        kwargs[key] = value
    return Config(
        path=path,
        base_dir=base_dir,
        newsletter=newsletter,
        database_url=db_url,
        default_sender=default_sender,
        senders=senders,
        dispatch=DispatchSettings(**kwargs),
        environ=environ,
        raw=raw,
    )
