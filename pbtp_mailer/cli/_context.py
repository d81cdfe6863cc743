"""Shared state of one CLI invocation (the config, loaded on first use) and the
helpers every command module uses: ``open_store`` and ``when`` (a time as shown).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from pbtp_mailer.config import Config
    from pbtp_mailer.store import Store

__all__ = ["AppContext", "pass_app", "open_store", "when"]


@dataclass
class AppContext:
    config_path: str | None = None
    _config: Config | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            from pbtp_mailer.config import load_config

            self._config = load_config(self.config_path)
        return self._config


pass_app = click.make_pass_decorator(AppContext)


@contextmanager
def open_store(app: AppContext) -> Iterator[Store]:
    """The store of the invocation's config, closed when the block ends."""
    from pbtp_mailer.store import Store

    store = Store.open(app.config)
    try:
        yield store
    finally:
        store.close()


def when(value: datetime | None) -> str:
    """A stored time as the CLI prints it: ISO 8601 to the second, UTC as ``Z``; "" for None."""
    if value is None:
        return ""
    text = value.isoformat(timespec="seconds")
    if value.tzinfo is None or text.endswith("+00:00"):
        text = text.removesuffix("+00:00") + "Z"
    return text
