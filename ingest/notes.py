"""What ingest says about an input it skipped or salvaged, in one line that is safe to show.

File names and field values come from the outside: a name may hold bytes that are not UTF-8,
control characters (ANSI escapes, newlines, bidi overrides) or text that a terminal library
would read as markup (``x[/bold]``). Every note is stored with such characters escaped, so the
JSON report, logs and terminal all get one honest, inert line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

# C0/C1 controls, DEL, bidi embeddings/overrides/isolates, line and paragraph separators, and
# the lone surrogates that stand for undecodable bytes in file names
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group(0)
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape'd byte of a file name
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_line(text: str) -> str:
    """``text`` with every control, bidi and undecodable character written as an escape."""
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text


def path_text(path: Path | str) -> str:
    """A path as storable text: bytes that are not UTF-8 written as ``\\xNN`` (Chroma and JSON
    need valid UTF-8); identical to ``str(path)`` for every UTF-8 name."""
    raw = os.fsencode(path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace")


def path_exists(stored: str) -> bool:
    """Whether the file a :func:`path_text` string names still exists (the stored text, or the
    name it was escaped from)."""
    if os.path.exists(stored):
        return True
    if "\\x" not in stored:
        return False
    raw = re.sub(rb"\\x([89a-f][0-9a-f])", lambda m: bytes([int(m.group(1), 16)]), stored.encode())
    return os.path.exists(raw)


@dataclass
class Note:
    """An input (``where``: a file, ``file:line`` or an argument) and what happened to it."""

    where: str
    reason: str

    def __post_init__(self) -> None:
        self.where = safe_line(str(self.where))
        self.reason = safe_line(str(self.reason))

    @property
    def line(self) -> str:
        """The plain one-line text, for logs and tests."""
        return f"{self.where}: {self.reason}"

    def __str__(self) -> str:
        """The line for a terminal that reads rich markup (the CLI prints it as markup), with
        anything that looks like a markup tag escaped, so ``x[/bold].md`` shows as written."""
        from rich.markup import escape

        return escape(self.line)


class Skipped(Note):
    """An input that was not ingested."""


class Salvaged(Note):
    """An input ingested with something dropped or repaired (a bad date, invalid bytes, an
    article cut at the chunk limit)."""
