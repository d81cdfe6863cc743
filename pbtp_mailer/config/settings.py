"""The typed settings: ``Newsletter``, ``DispatchSettings``, the sender tables, ``Config``.

Each table of pbtp-mailer.toml is declared here once, with its types and
ranges (``fields``); ``load`` validates the file against these declarations
with pydantic. ``Newsletter`` and ``DispatchSettings`` stay plain frozen
dataclasses, so code and tests may build or ``replace()`` them freely: only
what comes from the file is validated.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pbtp_mailer.config.fields import (
    BareAddress,
    Direction,
    Domain,
    FeedbackId,
    Flag,
    HttpUrl,
    Language,
    Line,
    ListId,
    Mailbox,
    Port,
    TimeZone,
    Value,
    count,
    finite,
)
from pbtp_mailer.config.places import Locator, Places
from pbtp_mailer.errors import ConfigError

_M = TypeVar("_M", bound=BaseModel)

__all__ = ["Newsletter", "DispatchSettings", "SenderTable", "DatabaseTable", "Config",
           "SECTIONS", "DEFAULT_DATA_DIR", "ENV_SECRET"]

ENV_SECRET = "PBTP_MAILER_SECRET"
DEFAULT_DATA_DIR = ".pbtp-mailer"

#: tables owned by a feature, each read with ``Config.section(name, Model)``
SECTIONS = ("web", "feedback", "subscribe", "doctor")

_FORBID: Any = ConfigDict(extra="forbid")


@dataclass(frozen=True, kw_only=True)
class Newsletter:
    """``[newsletter]``: who sends, and the values that go into every message's headers."""

    __pydantic_config__: ClassVar[Any] = _FORBID

    name: Line
    from_addr: Annotated[Mailbox, Field(alias="from")]
    postal_address: Line
    web_base_url: HttpUrl
    unsubscribe_base_url: HttpUrl
    list_id: ListId
    reply_to: Mailbox | None = None
    #: default: ``web_base_url``
    archive_url: HttpUrl = ""
    unsubscribe_mailto: BareAddress | None = None
    language: Language = "en"
    direction: Direction = "ltr"
    timezone: TimeZone = "UTC"
    #: default: the domain of ``from``
    message_id_domain: Domain = ""
    feedback_id: FeedbackId | None = None
    #: the footers' "NAME is DESCRIPTION." ("the e-newsletter of ..."); empty: no sentence
    description: Line = ""

    def __post_init__(self) -> None:
        if not self.archive_url:
            object.__setattr__(self, "archive_url", self.web_base_url)
        if not self.message_id_domain:
            object.__setattr__(self, "message_id_domain", self.from_address.rpartition("@")[2])

    @property
    def from_address(self) -> str:
        """The bare address of From (envelope sender by default)."""
        return parseaddr(self.from_addr)[1]


@dataclass(frozen=True, kw_only=True)
class DispatchSettings:
    """``[dispatch]``: the dispatcher's policy. Every number has a range (finding 7)."""

    __pydantic_config__: ClassVar[Any] = _FORBID

    max_attempts: Annotated[int, count(ge=1, le=1000)] = 5
    max_age_hours: Annotated[float, finite(gt=0, le=24 * 366)] = 72.0
    backoff_base_seconds: Annotated[float, finite(gt=0, le=86400)] = 60.0
    backoff_max_seconds: Annotated[float, finite(gt=0, le=7 * 86400)] = 3600.0
    in_run_retry_seconds: Annotated[float, finite(ge=0, le=3600)] = 30.0
    pause_after_consecutive_failures: Annotated[int, count(ge=1, le=1_000_000)] = 25
    suppress_on_permanent: Flag = True
    stale_after_hours: Annotated[float, finite(gt=0, le=24 * 366)] = 24.0
    doctor_gate_recipients: Annotated[int, count(ge=0, le=10**9)] = 1000


_SECRET_KEYS = ("password", "api_key", "token", "secret", "server_token")


class SenderTable(BaseModel):
    """``[senders.NAME]``: ``kind`` plus the kind's options (checked by the sender itself).

    Declared here: the numbers every network sender shares, each with its
    range, and the secrets that must never be in the file.
    """

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Value] = Field(init=False)

    kind: Line
    port: Port | None = None
    connections: Annotated[int, Field(ge=1, le=1000)] | None = None
    concurrency: Annotated[int, Field(ge=1, le=1000)] | None = None
    batch_size: Annotated[int, Field(ge=1, le=10_000)] | None = None
    max_messages_per_connection: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    timeout: Annotated[float, Field(allow_inf_nan=False, gt=0, le=3600)] | None = None
    connect_timeout: Annotated[float, Field(allow_inf_nan=False, gt=0, le=3600)] | None = None
    password: Any = None
    api_key: Any = None
    token: Any = None
    secret: Any = None
    server_token: Any = None

    @field_validator(*_SECRET_KEYS, mode="before")
    @classmethod
    def _never_secrets(cls, value: Any, info: Any) -> Any:
        raise ValueError(f"must not be in the file; name an environment variable with "
                         f"'{info.field_name}_env' instead")

    @field_validator("port", "connections", "concurrency", "batch_size",
                     "max_messages_per_connection", "timeout", "connect_timeout", mode="before")
    @classmethod
    def _not_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number, not true/false")
        return value


@dataclass(frozen=True, kw_only=True)
class DatabaseTable:
    """``[database]``: ``url`` (or ``$PBTP_MAILER_DATABASE_URL``), else a SQLite ``path``."""

    __pydantic_config__: ClassVar[Any] = _FORBID

    url: Line | None = None
    path: Line = f"{DEFAULT_DATA_DIR}/pbtp-mailer.sqlite3"


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
    #: (table, key...) -> (line, col) in the file, for located errors
    places: Places = field(default_factory=dict, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.base_dir / DEFAULT_DATA_DIR

    def place(self, *key: str) -> str:
        """``FILE:LINE:COL`` of a table or key (its nearest known parent), else ``FILE``."""
        return Locator(self.path, self.places)(*key)

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
        naming the file, the line, the table and the field.
        """
        from pydantic import ValidationError

        from pbtp_mailer.config.messages import section_error

        table = self.raw.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{self.place(name)}: [{name}] must be a table")
        try:
            return model.model_validate(table)
        except ValidationError as exc:
            raise section_error(Locator(self.path, self.places), name, model, exc) from None

    def resolve(self, value: str | os.PathLike[str]) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p
