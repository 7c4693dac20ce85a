"""Write small, valid PDF files by hand (no PDF library), for ingest tests.

The file has one content stream per page, text set in the standard Helvetica Type1 font with
the ``BT``/``Tf``/``Td``/``Tj``/``ET`` operators, an exact cross-reference table and an
``/Info`` dictionary holding ``/Title`` and ``/CreationDate``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

FONT_SIZE = 11
LEADING = 14
LINES_PER_PAGE = 46
WRAP = 90
_PAGE_TOP = 740
_MARGIN = 72


def pdf_string(text: str) -> bytes:
    """A PDF literal string: ``(...)`` with ``\\``, ``(`` and ``)`` escaped (Latin-1 text)."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("latin-1") + b")"


def pdf_date(when: datetime) -> str:
    """``D:YYYYMMDDHHmmSS+HH'mm'`` as the PDF spec writes dates."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    offset = when.utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"D:{when:%Y%m%d%H%M%S}{sign}{minutes // 60:02d}'{minutes % 60:02d}'"


def _layout(paragraphs: Sequence[str]) -> list[list[str | None]]:
    """Wrap paragraphs into lines and lines into pages; ``None`` is a blank line."""
    lines: list[str | None] = []
    for paragraph in paragraphs:
        if lines:
            lines.append(None)
        lines.extend(textwrap.wrap(paragraph, WRAP) or [""])
    pages = [lines[i : i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)]
    return pages or [[]]


def _content(lines: Sequence[str | None]) -> bytes:
    ops = [b"BT", f"/F1 {FONT_SIZE} Tf".encode(), f"{_MARGIN} {_PAGE_TOP} Td".encode()]
    first = True
    for line in lines:
        if not first:
            ops.append(f"0 -{LEADING} Td".encode())
        first = False
        if line:
            ops.append(pdf_string(line) + b" Tj")
    ops.append(b"ET")
    return b"\n".join(ops)


def make_pdf(
    path: Path,
    title: str,
    paragraphs: Sequence[str],
    *,
    created: datetime | None = None,
    author: str | None = None,
) -> Path:
    """Write a valid PDF with ``paragraphs`` of text (as many pages as it takes) to ``path``."""
    pages = _layout(paragraphs)
    n_pages = len(pages)
    # Object numbers: 1 catalog, 2 page tree, 3 font, then (page, contents) per page, then info.
    page_nums = [4 + 2 * i for i in range(n_pages)]
    info_num = 4 + 2 * n_pages
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids ["
        + b" ".join(f"{n} 0 R".encode() for n in page_nums)
        + f"] /Count {n_pages} >>".encode(),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    }
    for num, lines in zip(page_nums, pages, strict=True):
        stream = _content(lines)
        objects[num] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {num + 1} 0 R >>"
        ).encode()
        objects[num + 1] = (
            f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream"
        )
    info = b"<< /Title " + pdf_string(title)
    info += b" /CreationDate " + pdf_string(pdf_date(created or datetime(2022, 3, 16, 6, 30)))
    if author:
        info += b" /Author " + pdf_string(author)
    objects[info_num] = info + b" /Producer (newsdesk tests) >>"

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for num in sorted(objects):
        offsets[num] = len(out)
        out += f"{num} 0 obj\n".encode() + objects[num] + b"\nendobj\n"
    xref_at = len(out)
    size = info_num + 1
    out += f"xref\n0 {size}\n".encode()
    out += b"0000000000 65535 f \n"
    for num in range(1, size):
        out += f"{offsets[num]:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {size} /Root 1 0 R /Info {info_num} 0 R >>\n".encode()
    out += f"startxref\n{xref_at}\n%%EOF\n".encode()
    path.write_bytes(bytes(out))
    return path
