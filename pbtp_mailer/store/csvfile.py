"""Reading a user's CSV file safely: encoding, delimiter, size limits, line numbers.

People export lists from Excel, Google Sheets or a provider, so the reader
accepts UTF-8 with or without a BOM and sniffs the delimiter (``,`` ``;``
tab ``|``) from the header line. It refuses, with ``FILE:LINE: reason``,
what it cannot read honestly: another encoding (it says which byte and to
save as UTF-8), an empty file, or a line or field too long to be a list of
people (a 10 MB single line is refused at once, it never hangs).
"""

from __future__ import annotations

import codecs
import csv
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from pbtp_mailer.errors import ImportFileError, Problem

__all__ = ["CsvTable", "read_table", "file_error", "MAX_LINE_BYTES", "MAX_FIELD_CHARS"]

MAX_FILE_BYTES = 256 << 20  # 256 MiB: about two million rows
MAX_LINE_BYTES = 1 << 20  # 1 MiB: far above any real row, far below a runaway file
MAX_FIELD_CHARS = 1 << 20
DELIMITERS = (",", ";", "\t", "|")
_limit_lock = threading.Lock()


def file_error(message: str, problems: list[Problem] | None = None) -> ImportFileError:
    """An ``ImportFileError`` whose message is ``message`` (for faults with no line)."""
    err = ImportFileError(list(problems or []))
    err.message = message
    err.args = (message,)
    return err


@dataclass
class CsvTable:
    """The header and the non-blank rows of a CSV file, each with its first line number."""

    name: str
    delimiter: str
    header: list[str]
    header_line: int
    rows: list[tuple[int, list[str]]] = field(default_factory=list)

    def fail(self, line: int, message: str) -> NoReturn:
        raise ImportFileError([Problem(self.name, line, None, "", message)])


@contextmanager
def _field_limit(limit: int) -> Iterator[None]:
    # csv.field_size_limit is process-wide: set it only while we read.
    with _limit_lock:
        old = csv.field_size_limit(limit)
        try:
            yield
        finally:
            csv.field_size_limit(old)


def _line_of(raw: bytes, pos: int) -> tuple[int, int]:
    """1-based (line, byte position in that line) of byte offset ``pos``."""
    line = raw.count(b"\n", 0, pos) + 1
    start = raw.rfind(b"\n", 0, pos) + 1
    return line, pos - start + 1


def _decode(raw: bytes, name: str) -> str:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFileError([Problem(
            name, 1, None, "",
            'is UTF-16; save the file as UTF-8 (in Excel: "CSV UTF-8")')])
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_of(raw, exc.start)
        byte = raw[exc.start]
        raise ImportFileError([Problem(
            name, line, None, "",
            f"not UTF-8 (byte 0x{byte:02x} at position {col}); "
            'save the file as UTF-8 (in Excel: "CSV UTF-8")')]) from None


def _check_lines(raw: bytes, name: str) -> None:
    start = 0
    line = 1
    size = len(raw)
    while start < size:  # one pass over the newlines, bounded by the file size
        end = raw.find(b"\n", start)
        if end < 0:
            end = size
        if end - start > MAX_LINE_BYTES:
            raise ImportFileError([Problem(
                name, line, None, "",
                f"line is {end - start:,} bytes long (limit {MAX_LINE_BYTES:,}); "
                "is this really a CSV file?")])
        start = end + 1
        line += 1


def sniff_delimiter(header_line: str) -> str:
    """The candidate delimiter that occurs most in the header line (``,`` if none)."""
    best, count = ",", 0
    for d in DELIMITERS:
        n = header_line.count(d)
        if n > count:
            best, count = d, n
    return best


def read_table(path: Path, *, display: str | None = None) -> CsvTable:
    """Read ``path`` into a ``CsvTable`` or raise ``ImportFileError`` naming the place."""
    name = display or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise file_error(f"{name}: {size:,} bytes is more than the {MAX_FILE_BYTES:,} "
                             "a list may have; split the file")
        raw = path.read_bytes()
    except OSError as exc:
        raise file_error(f"{name}: cannot read ({exc.strerror or exc})") from None
    if not raw.lstrip(codecs.BOM_UTF8).strip():
        raise file_error(f"{name}: empty file")
    _check_lines(raw, name)
    text = _decode(raw, name)
    first = text.lstrip("\ufeff").lstrip("\r\n").split("\n", 1)[0]
    delimiter = sniff_delimiter(first)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    table: CsvTable | None = None
    prev = 0
    with _field_limit(MAX_FIELD_CHARS):
        try:
            for cells in reader:
                line, prev = prev + 1, reader.line_num
                if not any(c.strip() for c in cells):
                    continue
                if table is None:
                    table = CsvTable(name, delimiter, [c.strip() for c in cells], line)
                else:
                    table.rows.append((line, cells))
        except csv.Error as exc:
            where = prev + 1
            if "field larger than field limit" in str(exc):
                msg = (f"a field is longer than {MAX_FIELD_CHARS:,} characters "
                       "(an unclosed quote?); is this really a CSV file?")
            elif "unexpected end of data" in str(exc):
                msg = 'a quoted field starting on this line is never closed (a missing ")'
            else:
                msg = f"not readable as CSV: {exc}"
            raise ImportFileError([Problem(name, where, None, "", msg)]) from None
    if table is None:
        raise file_error(f"{name}: empty file")
    return table
