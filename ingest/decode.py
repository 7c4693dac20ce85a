"""Bytes to storable text: salvage a few bad bytes, refuse what is not text at all.

A file (or JSONL line) that is UTF-8 but for a few bytes keeps its text, the bad bytes replaced
by U+FFFD and counted in a note; UTF-16 with a byte-order mark is read as such; a file with NUL
bytes, or where more than :data:`MAX_BAD_SHARE` of the characters are undecodable bytes or
control characters, is binary and refused. :func:`clean` makes any string storable (Chroma and
the tokenizers need valid UTF-8; control characters only pollute passages).
"""

from __future__ import annotations

import codecs
import re

MAX_BAD_SHARE = 0.2  # undecodable bytes + control characters, as a share of the characters
_SNIFF = 8192  # bytes looked at for NULs
# control characters a text has no use for (tab, newline and carriage return are kept)
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class NotText(ValueError):
    """The bytes are binary, not text; ``str()`` says why in a few words."""


def decode(raw: bytes, what: str = "file") -> tuple[str, str | None]:
    """(text, note): the note says what was replaced, None when nothing was.

    Raises :class:`NotText` for binary data."""
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            text = raw.decode(codec, "replace")
            bad = text.count("\ufffd")
            return text, (f"{bad} bytes that are not {codec.upper()} replaced" if bad else None)
    if b"\x00" in raw[:_SNIFF]:
        raise NotText(f"binary {what}, not text (NUL bytes)")
    try:
        text = raw.decode("utf-8-sig")
        invalid, first = 0, -1
    except UnicodeDecodeError as exc:
        first = exc.start
        text = raw.decode("utf-8-sig", "surrogateescape")
        invalid = len(_ESCAPED_BYTE.findall(text))
        text = _ESCAPED_BYTE.sub("\ufffd", text)
    bad = invalid + len(_CONTROL.findall(text))
    if text and bad > MAX_BAD_SHARE * len(text):
        share = round(100 * bad / len(text))
        raise NotText(f"binary {what}, not text ({share}% undecodable bytes or control codes)")
    if not invalid:
        return text, None
    noun = "byte that is" if invalid == 1 else "bytes that are"
    return text, f"{invalid} {noun} not UTF-8 replaced with U+FFFD (first at byte {first})"


def clean(text: str) -> str:
    """``text`` without control characters (each becomes a space) or lone surrogates (each
    becomes U+FFFD)."""
    if not _UNSTORABLE.search(text):
        return text
    text = _CONTROL.sub(" ", text)
    if re.search("[\ud800-\udfff]", text):
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text
