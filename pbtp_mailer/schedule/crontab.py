"""The crontab entry that runs ``dispatch-due``, and the environment file it reads.

Cron starts commands with a minimal environment (``PATH=/usr/bin:/bin``, no
virtualenv, no secrets), so the entry uses absolute paths, ``cd``s to the
project and reads ``.pbtp-mailer/env`` (plain ``NAME=value`` lines, chmod 600;
the same file serves systemd's ``EnvironmentFile=``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pbtp_mailer.config import Config

__all__ = ["ENV_FILE", "LOG_FILE", "CRON_OUT", "executable", "cron_command", "cron_entry",
           "env_file_problems"]

ENV_FILE = "env"
LOG_FILE = "dispatch.log"
CRON_OUT = "cron.out"


def executable() -> list[str]:
    """How cron should start this very installation (absolute, no PATH needed)."""
    import os
    import shutil
    import sys

    here = Path(os.path.abspath(sys.executable)).parent / "pbtp-mailer"
    if here.is_file() and os.access(here, os.X_OK):
        return [str(here)]
    found = shutil.which("pbtp-mailer")
    if found:
        return [os.path.abspath(found)]
    return [os.path.abspath(sys.executable), "-m", "pbtp_mailer"]


def cron_command(config: Config, command: list[str] | None = None) -> str:
    """The shell command of the crontab entry: cd, read the env file, run, log."""
    import shlex

    data = config.data_dir
    argv = [*(command or executable())]
    if config.path is not None:
        argv += ["--config", str(Path(config.path).resolve())]
    argv += ["dispatch-due", "--log-file", str(data / LOG_FILE)]
    q = shlex.quote
    # set -a: the env file holds plain NAME=value lines, the format systemd's
    # EnvironmentFile= reads too, so one file serves cron and a timer unit
    return (f"cd {q(str(config.base_dir))} && set -a && . {q(str(data / ENV_FILE))} && set +a && "
            f"{' '.join(q(a) for a in argv)} >>{q(str(data / CRON_OUT))} 2>&1")


def cron_entry(config: Config, every_minutes: int = 5, command: list[str] | None = None) -> str:
    """``*/5 * * * * <cron_command>`` (``%`` escaped: cron reads it as a newline)."""
    return f"*/{every_minutes} * * * * " + cron_command(config, command).replace("%", r"\%")


def env_file_problems(config: Config) -> list[str]:
    """What is wrong with the environment file the crontab entry reads."""
    import stat

    path = config.data_dir / ENV_FILE
    if not path.is_file():
        return [f"{path} does not exist: create it with the secrets cron needs, one "
                f"NAME=value a line (PBTP_MAILER_SECRET=..., each sender's password_env), "
                f"then chmod 600 {path}"]
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return [f"{path} is readable by others (mode {mode:o}): chmod 600 {path}"]
    return []
