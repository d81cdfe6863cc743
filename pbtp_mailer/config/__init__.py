"""pbtp-mailer.toml plus the environment, turned into typed settings.

``load_config()`` finds and validates the file: every table is declared as
a pydantic-validated type (``settings``, value types in ``fields``), and
every error is one ``pbtp-mailer.toml:LINE:COL: [table]: 'key' message``
line (``messages``, positions from ``places``). A feature reads its own table
with ``config.section("NAME", Model)`` (names in ``SECTIONS``).
"""

from pbtp_mailer.config.load import (
    CONFIG_FILENAME,
    ENV_CONFIG,
    ENV_DATABASE_URL,
    config_from_dict,
    find_config,
    load_config,
)
from pbtp_mailer.config.settings import (
    DEFAULT_DATA_DIR,
    ENV_SECRET,
    SECTIONS,
    Config,
    DatabaseTable,
    DispatchSettings,
    Newsletter,
    SenderTable,
)

__all__ = [
    "CONFIG_FILENAME",
    "ENV_CONFIG",
    "ENV_DATABASE_URL",
    "ENV_SECRET",
    "DEFAULT_DATA_DIR",
    "SECTIONS",
    "Newsletter",
    "DispatchSettings",
    "SenderTable",
    "DatabaseTable",
    "Config",
    "find_config",
    "load_config",
    "config_from_dict",
]
