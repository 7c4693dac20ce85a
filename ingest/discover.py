"""Which files an ingest reads: files named directly, found under folders, matched by globs.

Folders are walked without recursion limits, following symbolic links to folders but entering
each real folder once, so a link loop (``a/b -> a``) is visited once instead of forever; a file
reached by several names is read once. ``**`` globs are matched on that same walk (Python's
``glob`` follows link loops without end). Nothing raises: every unusable argument or folder is
a one-line :class:`Skipped`.
"""

from __future__ import annotations

import errno
import glob
import logging
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from ingest.loaders import SUFFIXES
from ingest.notes import Skipped

log = logging.getLogger(__name__)
_MAGIC = re.compile(r"[*?\[]")


def discover(args: Iterable[str]) -> tuple[list[Path], list[Skipped]]:
    """Real paths of the files to read (each once, in order of first mention), and why any
    argument gave nothing."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    for arg in args:
        try:
            found = _expand(arg, skipped)
        except (OSError, ValueError, RuntimeError) as exc:  # a name too long, a NUL byte…
            skipped.append(Skipped(arg, f"cannot read ({_why(exc)})"))
            continue
        files.extend(found)
    unique = dict.fromkeys(Path(os.path.realpath(p)) for p in files)
    notes = {(s.where, s.reason): s for s in skipped}  # a folder named twice: said once
    return list(unique), list(notes.values())


def _expand(arg: str, skipped: list[Skipped]) -> list[Path]:
    path = Path(arg).expanduser()
    if path.is_dir():
        found = _walk(path, lambda p: p.suffix.lower() in SUFFIXES, skipped)
        if not found:
            skipped.append(Skipped(str(path), "folder has no .txt/.md/.html/.pdf/.jsonl files"))
        return found
    if path.exists():
        return [path]
    if _MAGIC.search(arg):
        matches = _glob(str(path), skipped)
        if not matches:
            skipped.append(Skipped(arg, "pattern matches no files"))
        return matches
    if path.is_symlink():
        skipped.append(Skipped(arg, f"no such file or folder ({_dangling(path)})"))
    else:
        skipped.append(Skipped(arg, "no such file or folder"))
    return []


def _walk(root: Path, wanted: Callable[[Path], bool], skipped: list[Skipped]) -> list[Path]:
    """Files under ``root`` that ``wanted`` accepts, sorted; each real folder entered once."""
    found: list[Path] = []
    entered: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            info = folder.stat()
            if (info.st_dev, info.st_ino) in entered:
                log.info("%s: folder already read (a link back to it)", folder)
                continue
            entered.add((info.st_dev, info.st_ino))
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name, reverse=True)
        except OSError as exc:
            skipped.append(Skipped(str(folder), f"cannot read folder ({_why(exc)})"))
            continue
        for entry in entries:
            path = folder / entry.name
            try:
                if entry.is_dir():  # follows links; a link to a folder already read is skipped
                    stack.append(path)
                elif entry.is_file():
                    if wanted(path):
                        found.append(path)
                elif entry.is_symlink():
                    skipped.append(Skipped(str(path), _dangling(path)))
            except OSError as exc:
                why = (
                    "symbolic link loop"
                    if exc.errno == errno.ELOOP
                    else f"cannot read ({_why(exc)})"
                )
                skipped.append(Skipped(str(path), why))
    return sorted(found)


def _dangling(path: Path) -> str:
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
    return "broken symbolic link"


def _glob(pattern: str, skipped: list[Skipped]) -> list[Path]:
    """Files matching ``pattern``; ``**`` on a loop-safe walk, anything else by ``glob``."""
    parts = pattern.split(os.sep)
    if "**" not in parts:
        return sorted(p for p in map(Path, glob.glob(pattern)) if p.is_file())
    fixed = next(i for i, part in enumerate(parts) if _MAGIC.search(part))
    base = os.sep.join(parts[:fixed]) or (os.sep if pattern.startswith(os.sep) else ".")
    regex = _translate(parts[fixed:])
    if not Path(base).is_dir():
        return []
    return _walk(Path(base), lambda p: bool(regex.fullmatch(os.path.relpath(p, base))), skipped)


def _translate(parts: list[str]) -> re.Pattern[str]:
    """A regex for glob segments matched against a relative path: ``**`` is any number of
    folders, ``*`` and ``?`` stay within one name, names starting with "." need a "." (as
    in ``glob``)."""
    sep = re.escape(os.sep)
    out = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            out.append(
                f"(?:(?!\\.)[^{sep}]*(?:{sep}|$))*" if last else f"(?:(?!\\.)[^{sep}]*{sep})*"
            )
            continue
        out.append(("" if part.startswith(".") else "(?!\\.)") + _segment(part, sep))
        if not last:
            out.append(sep)
    return re.compile("".join(out), re.S)


def _segment(part: str, sep: str) -> str:
    out, i = [], 0
    while i < len(part):
        ch = part[i]
        if ch == "*":
            out.append(f"[^{sep}]*")
        elif ch == "?":
            out.append(f"[^{sep}]")
        elif ch == "[" and (close := part.find("]", i + 2)) > 0:
            body = part[i + 1 : close]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            out.append(f"[{'^' if negate else ''}{body.replace(chr(92), chr(92) * 2)}]")
            i = close
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
