"""Find senders by name: configured tables, sender URLs and installed kinds.

Kinds come from the entry-point group ``pbtp_mailer.senders`` (so a
third-party package adds one by declaring an entry point), over a built-in
table that keeps a source checkout working when the package metadata is not
installed. A sender is named three ways, tried in this order:

* a URL (anything with ``://``): ``smtp://news@smtp.example.org:587``;
* a ``[senders.NAME]`` table of pbtp-mailer.toml;
* a bare kind with default options: ``outbox``, ``console``, ``memory``.

Importing this module imports no sender: each kind is loaded on first use.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from pbtp_mailer.errors import ConfigError, UnknownSenderError
from pbtp_mailer.senders.base import Sender, SenderSpec

if TYPE_CHECKING:
    from pbtp_mailer.config import Config

__all__ = [
    "ENTRY_POINT_GROUP",
    "KindRef",
    "available_kinds",
    "register_kind",
    "parse_sender_url",
    "sender_spec",
    "create_sender",
    "describe_spec",
]

ENTRY_POINT_GROUP = "pbtp_mailer.senders"

_BUILTIN = {
    "smtp": "pbtp_mailer.senders.smtp:SMTPSender",
    "smtps": "pbtp_mailer.senders.smtp:SMTPSender",
    "ses": "pbtp_mailer.senders.ses:SESSender",
    "postmark": "pbtp_mailer.senders.postmark:PostmarkSender",
    "sendgrid": "pbtp_mailer.senders.sendgrid:SendGridSender",
    "mailgun": "pbtp_mailer.senders.mailgun:MailgunSender",
    "outbox": "pbtp_mailer.senders.outbox:OutboxSender",
    "console": "pbtp_mailer.senders.console:ConsoleSender",
    "memory": "pbtp_mailer.senders.memory:MemorySender",
}
_extra: dict[str, Any] = {}

#: where option values may hold secrets by mistake (masked in listings)
SECRET_SUFFIXES = ("password", "api_key", "token", "secret", "key")


@dataclass(frozen=True)
class KindRef:
    """An entry point, or something loaded already (``register_kind``)."""

    name: str
    value: str
    _obj: Any = None

    def load(self) -> Any:
        if self._obj is not None:
            return self._obj
        module, _, attr = self.value.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


@functools.lru_cache(maxsize=1)
def _entry_point_kinds() -> tuple[tuple[str, str], ...]:
    """The installed entry points, read once per process: scanning every distribution's
    metadata costs a few ms and ``send`` asks three times before the first message."""
    from importlib.metadata import entry_points

    return tuple((ep.name, ep.value) for ep in entry_points(group=ENTRY_POINT_GROUP))


def available_kinds() -> dict[str, KindRef]:
    """Every sender kind: built-ins, then entry points, then ``register_kind``."""
    kinds = {name: KindRef(name, value) for name, value in _BUILTIN.items()}
    for name, value in _entry_point_kinds():
        kinds[name] = KindRef(name, value)
    for name, obj in _extra.items():
        if isinstance(obj, str):
            kinds[name] = KindRef(name, obj)
        else:
            kinds[name] = KindRef(name, f"{obj.__module__}:{obj.__qualname__}", obj)
    return dict(sorted(kinds.items()))


def register_kind(name: str, factory: Any) -> None:
    """Add a kind at run time (``"module:Class"`` or a class); tests use it."""
    _extra[name] = factory


# --- URLs -------------------------------------------------------------------

_URL_KINDS = ("smtp", "smtps", "ses", "postmark", "sendgrid", "mailgun", "outbox", "console",
              "memory")


def _coerce(value: str) -> Any:
    low = value.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if value.isdigit():
        return int(value)
    return value


def _mask_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":****@", 1)
    return parts._replace(netloc=netloc).geturl()


def parse_sender_url(url: str, *, environ: dict[str, str] | None = None,
                     base_dir: str = ".") -> SenderSpec:
    """``smtp://user@host:587?tls=none`` and friends → a ``SenderSpec``.

    Query parameters become options. Secrets never go in a URL: a password
    there is refused (and masked in the error); name its variable with
    ``?password_env=NAME`` instead (default ``PBTP_SMTP_PASSWORD``).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"sender URL {_mask_url(url)!r}: {exc}") from None
    kind = parts.scheme.lower()
    shown = _mask_url(url)
    if parts.password is not None:
        raise ConfigError(
            f"sender URL {shown!r}: passwords must not be in URLs",
            hint="name an environment variable instead: ?password_env=PBTP_SMTP_PASSWORD",
        )
    options: dict[str, Any] = {}
    host = parts.hostname or ""
    if kind in ("smtp", "smtps"):
        if not host:
            raise ConfigError(f"sender URL {shown!r}: a host is required")
        options["host"] = host
        if port is not None:
            options["port"] = port
        if parts.username:
            options["username"] = unquote(parts.username)
            options["password_env"] = "PBTP_SMTP_PASSWORD"
    elif kind == "ses":
        if host:
            options["region"] = host
    elif kind == "mailgun":
        if not host:
            raise ConfigError(f"sender URL {shown!r}: mailgun://DOMAIN needs the sending domain")
        options["domain"] = host
    elif kind == "outbox":
        path = unquote(parts.netloc + parts.path)
        if path:
            options["path"] = path
    elif kind not in available_kinds():
        raise UnknownSenderError(
            f"unknown sender URL scheme {kind!r} in {shown!r} "
            f"(known: {', '.join(_URL_KINDS)})"
        )
    elif host:
        options["host"] = host
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        options[key] = _coerce(value)
    return SenderSpec(name=shown, kind=kind, options=options,
                      environ=dict(environ or {}), base_dir=str(base_dir))


# --- names ------------------------------------------------------------------


def sender_spec(name_or_url: str | None, config: Config) -> SenderSpec:
    """The spec a name, URL or ``None`` (the default sender) stands for."""
    name = name_or_url or config.default_sender
    environ = dict(config.environ)
    base_dir = str(config.base_dir)
    if "://" in name:
        return parse_sender_url(name, environ=environ, base_dir=base_dir)
    kinds = available_kinds()
    if name in config.senders:
        table = dict(config.senders[name])
        kind = str(table.pop("kind", ""))
        if kind not in kinds:
            raise UnknownSenderError(
                f"sender '{name}': unknown kind {kind!r} (known kinds: {', '.join(kinds)})"
            )
        return SenderSpec(name=name, kind=kind, options=table, environ=environ,
                          base_dir=base_dir)
    if name in kinds:
        return SenderSpec(name=name, kind=name, options={}, environ=environ, base_dir=base_dir)
    configured = ", ".join(config.senders) or "none"
    # a default from the file names the file and line: the table it wants is missing there
    where = f"{config.place('default_sender')}: default_sender: " if not name_or_url else ""
    raise UnknownSenderError(
        f"{where}unknown sender {name!r} (configured senders: {configured}; "
        f"kinds: {', '.join(kinds)}; or a URL such as smtp://user@host:587)"
    )


def create_sender(name_or_url: str | None, config: Config, *,
                  concurrency: int | None = None) -> Sender:
    """Build (but do not open) the sender ``name_or_url`` stands for.

    ``concurrency`` overrides the configured number of parallel connections
    or requests. DKIM options wrap the sender in a signer.
    """
    spec = sender_spec(name_or_url, config)
    return build_sender(spec, concurrency=concurrency)


def build_sender(spec: SenderSpec, *, concurrency: int | None = None) -> Sender:
    """A sender from a spec (the step after name lookup)."""
    kinds = available_kinds()
    ref = kinds.get(spec.kind)
    if ref is None:
        raise UnknownSenderError(
            f"sender '{spec.name}': unknown kind {spec.kind!r} (known kinds: {', '.join(kinds)})"
        )
    if concurrency is not None:
        spec = SenderSpec(spec.name, spec.kind, {**spec.options, "concurrency": concurrency},
                          spec.environ, spec.base_dir)
    try:
        cls = ref.load()
    except ImportError as exc:
        raise ConfigError(f"sender kind '{spec.kind}' cannot be loaded ({ref.value}): {exc}") \
            from None
    factory = getattr(cls, "from_spec", cls)
    sender: Sender = factory(spec)
    if spec.options.get("dkim_key_file") or spec.options.get("dkim_ed25519_key_file"):
        from pbtp_mailer.senders.dkim import DKIMSigningSender

        sender = DKIMSigningSender.from_spec(sender, spec)
    return sender


def describe_spec(spec: SenderSpec) -> str:
    """One line for listings: kind and options, secrets shown only as env names."""
    shown = []
    for key, value in spec.options.items():
        if key.endswith("_env"):
            state = "set" if spec.environ.get(str(value)) else "not set"
            shown.append(f"{key}={value} ({state})")
        elif key.lower().endswith(SECRET_SUFFIXES) and not key.endswith("_file"):
            shown.append(f"{key}=****")
        else:
            shown.append(f"{key}={value}")
    return f"{spec.kind}" + (f"  {' '.join(shown)}" if shown else "")
