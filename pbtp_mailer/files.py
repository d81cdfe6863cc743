"""Writing a file a person named: all or nothing.

Every command that writes a user-named file (``lists export -o``, the schema
copy of ``new``, ``archive`` pages) writes a temporary file in the same
folder and renames it over the target only once everything was written, so
a failure (unknown list, disk full, a database error midway) leaves the old
file as it was and no half-written one.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "atomic_write"]


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", *, overwrite: bool = True,
                **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path``; on success it replaces ``path``.

    With ``overwrite=False`` an existing ``path`` is never replaced
    (``FileExistsError``, even when it appears while writing). The new file
    gets the usual permissions (0666 less the umask).
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, mode, **kwargs) as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            if overwrite:
                os.replace(tmp, target)
            else:
                os.link(tmp, target)  # fails if the target exists: no race with a second writer
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        if exc.filename is None or exc.filename == str(tmp):
            exc.filename = str(target)  # messages name the file the person asked for
        raise


def atomic_write(path: str | os.PathLike[str], data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` all at once (see ``atomic_open``)."""
    with atomic_open(path, "wb", overwrite=overwrite) as fh:
        fh.write(data)
