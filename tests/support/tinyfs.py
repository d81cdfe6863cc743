"""A tiny real filesystem (tmpfs of a few kB) to run out of space on.

Mounting needs root (or CAP_SYS_ADMIN); where that is impossible the test
is skipped with the reason rather than faked.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tiny_fs(where: Path, size: str) -> Iterator[Path]:
    """``where`` mounted as a tmpfs of ``size`` (such as ``"256k"``) for the block."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                           str(where)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


def fill(folder: Path, leave: int = 0) -> None:
    """Fill the filesystem of ``folder`` until fewer than ``leave`` bytes are free."""
    import os

    path = folder / ".filler"
    with open(path, "ab") as fh:
        chunk = b"\0" * 4096
        for _ in range(1_000_000):  # bounded: the filesystem is a few hundred kB
            st = os.statvfs(folder)
            if st.f_bavail * st.f_frsize <= leave + 4096:
                break
            try:
                fh.write(chunk)
                fh.flush()
            except OSError:
                break
