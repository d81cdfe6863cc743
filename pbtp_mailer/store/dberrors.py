"""Database errors as one line a person can act on, without the rows.

SQLAlchemy's messages carry the SQL and its bound parameters (addresses,
names) and would land in ``cron.out``; engines are opened with
``hide_parameters=True`` and the CLI turns any database error into
``database error: disk full while importing; nothing was changed``: the
reason (from the driver's error code, not its text), what was being done,
and what state that leaves.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from pbtp_mailer.errors import StoreError

__all__ = ["database_error", "db_reason"]

# sqlite3 error codes (Python >= 3.11 gives ``sqlite_errorcode``)
_SQLITE = {
    13: "disk full",          # SQLITE_FULL
    5: "the database is locked by another process",  # SQLITE_BUSY
    6: "a table is locked",   # SQLITE_LOCKED
    8: "the database file is read-only",  # SQLITE_READONLY
    10: "disk I/O error",     # SQLITE_IOERR
    11: "the database file is corrupt",   # SQLITE_CORRUPT
    14: "cannot open the database file",  # SQLITE_CANTOPEN
    26: "the file is not a database",     # SQLITE_NOTADB
}
# PostgreSQL SQLSTATE classes and codes
_PG = {
    "53100": "disk full",
    "53200": "the database server is out of memory",
    "53300": "too many connections to the database server",
    "57P01": "the database server shut down",
    "40001": "a concurrent transaction conflicted (try again)",
    "40P01": "a deadlock was detected (try again)",
    "08": "cannot reach the database server",
    "28": "the database refused the credentials",
    "42": "the database schema does not match this version (pbtp-mailer migrate?)",
    "23": "a database constraint was violated",
}


def db_reason(exc: BaseException) -> str:
    """The short reason of a database error, never quoting rows or parameters."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in _SQLITE:
            return _SQLITE[code & 0xFF]
        return str(orig).splitlines()[0] if str(orig) else type(orig).__name__
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(state, str):
        for key in (state, state[:2]):
            if key in _PG:
                return _PG[key]
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return "the connection to the database was lost"
    name = type(orig).__name__
    return f"{name} (SQLSTATE {state})" if state else name


def database_error(exc: BaseException, doing: str, after: str) -> StoreError | None:
    """A ``StoreError`` for a database error escaping a command, else ``None``.

    ``doing`` is the gerund (``importing``), ``after`` what the failure leaves
    (``nothing was changed``).
    """
    if not isinstance(exc, SQLAlchemyError | sqlite3.Error):
        return None
    return StoreError(f"database error: {db_reason(exc)} while {doing}; {after}")
