"""Citation numbers a reader can follow: one per cited article, 1..N in order of first use.

Answers are written (by the model, or by the extractive answer) with markers that are passage
ranks, ``[3]`` = ``Answer.passages[2]``. ``by_article`` rewrites them so that every passage of
one article shares its article's number, numbers follow the order of first use with no gaps,
and a run of markers reads ``[1][2]``, never ``[1][1]`` or ``[2][1]``. Each citation keeps its
passage's ``rank``; ``to_passage_markers`` turns an answer back into rank markers (for the
eval suite's passage-level citation metrics).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.types import Citation

_RUN = re.compile(r"(?:\s*\[\d+(?:\s*[,;–-]\s*\d+)*\])+")
_ONE = re.compile(r"\[(\d+(?:\s*[,;–-]\s*\d+)*)\]")


def _numbers(group: str) -> list[int]:
    out: list[int] = []
    for piece in re.split(r"\s*[,;]\s*", group):
        bounds = re.split(r"\s*[–-]\s*", piece)
        if len(bounds) == 2 and all(b.isdigit() for b in bounds):
            lo, hi = int(bounds[0]), int(bounds[1])
            out.extend(range(lo, hi + 1) if 0 < hi - lo < 20 else (lo, hi))
        elif piece.isdigit():
            out.append(int(piece))
    return out


def _ranks_in(run: str) -> list[int]:
    return [n for m in _ONE.finditer(run) for n in _numbers(m.group(1))]


def by_article(text: str, citations: Sequence[Citation]) -> tuple[str, list[Citation]]:
    """``text`` with rank markers renumbered per article; citations with ``n`` set to the
    article number and ``rank`` to the passage rank, sorted by (n, rank). Markers of passages
    without a citation are dropped."""
    by_rank = {c.passage.rank: c for c in citations}
    article_no: dict[str, int] = {}

    def number(rank: int) -> int | None:
        c = by_rank.get(rank)
        if c is None:
            return None
        return article_no.setdefault(c.passage.doc_id, len(article_no) + 1)

    def rewrite(match: re.Match[str]) -> str:
        run = match.group(0)
        lead = run[: len(run) - len(run.lstrip())]
        ns = sorted({n for r in _ranks_in(run) if (n := number(r)) is not None})
        return lead + "".join(f"[{n}]" for n in ns) if ns else ""

    renumbered = _RUN.sub(rewrite, text)
    # citations the text never marks (none should be) still get numbers, after the rest
    for c in sorted(citations, key=lambda c: c.passage.rank):
        number(c.passage.rank)
    out = [
        c.model_copy(update={"n": article_no[c.passage.doc_id], "rank": c.passage.rank})
        for c in citations
    ]
    return renumbered, sorted(out, key=lambda c: (c.n, c.rank))


def to_passage_markers(text: str, citations: Sequence[Citation]) -> str:
    """The inverse view: each article marker ``[n]`` becomes the rank markers of the passages
    cited under that number (``[1]`` → ``[1][4]``)."""
    ranks: dict[int, list[int]] = {}
    for c in citations:
        ranks.setdefault(c.n, []).append(c.rank or c.passage.rank)

    def rewrite(match: re.Match[str]) -> str:
        run = match.group(0)
        lead = run[: len(run) - len(run.lstrip())]
        out = sorted({r for n in _ranks_in(run) for r in ranks.get(n, [n])})
        return lead + "".join(f"[{r}]" for r in out)

    return _RUN.sub(rewrite, text)
