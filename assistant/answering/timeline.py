"""Dates in answers: a timeline for questions about how something developed, the window a
question asked for, how far apart the cited articles are, and which other outlets carried a
cited story.

A timeline answer orders its evidence by publication date, oldest first, one line per
sentence with its date and outlet. In extractive mode it is composed here from the scored
evidence sentences (``extractive.score_sentences``; the usual answer's layout is left to the
extractive modules); in LLM mode the passages go to the model oldest first, and the
question asks for a dated list.
"""

from __future__ import annotations

import re
from datetime import date

import numpy as np

from assistant.answering.extractive import Evidence
from assistant.index.lexical import LexicalIndex
from assistant.types import Answer, Citation, Passage, Timeframe

_TIMELINE = re.compile(
    r"\b(timeline|chronolog\w*|over time|over the (?:past|last) \w+"
    r"|how (?:has|have|did|does|do|is|are|was|were)\b.{0,80}?\b"
    r"(?:chang|evolv|develop|unfold|shift|progress|grow|grew|move|moved|turn)\w*)",
    re.IGNORECASE,
)
LLM_INSTRUCTION = (
    "Answer as a timeline: one line per development, oldest first, each line starting with "
    "the date of the passage it cites."
)
_UNDATED = date.max


def wants_timeline(question: str) -> bool:
    """Whether the question asks how something developed over time."""
    return bool(_TIMELINE.search(question))


def published(p: Passage) -> date | None:
    try:
        return date.fromisoformat(p.published_at[:10]) if p.published_at else None
    except ValueError:
        return None


def show_date(day: date | None) -> str:
    return f"{day.day} {day:%B %Y}" if day else "undated"


def by_date(passages: list[Passage]) -> list[Passage]:
    """Oldest first (undated last), rank order within a day."""
    return sorted(passages, key=lambda p: (published(p) or _UNDATED, p.rank))


def compose_timeline(
    scored: list[Evidence], max_lines: int = 6, per_story: int = 2
) -> tuple[str, list[Citation]]:
    """The extractive timeline: the best evidence sentences (``extractive.score_sentences``,
    best first; at most ``per_story`` of one story, no sentence twice), each on its date's
    line, oldest first. Markers are passage ranks; one citation per passage, quoting its best
    sentence."""
    if not scored:
        return "", []
    floor = max(0.6 * scored[0].score, 0.2)
    picked: list[Evidence] = []
    per: dict[str, int] = {}
    seen: set[tuple[str, int]] = set()
    for e in scored:
        if e.score < floor or len(picked) == max_lines:
            break
        story = e.passage.story_id or e.passage.doc_id
        where = (e.passage.doc_id, e.passage.start + e.start)
        if per.get(story, 0) >= per_story or where in seen or _repeats(e, picked):
            continue
        picked.append(e)
        seen.add(where)
        per[story] = per.get(story, 0) + 1
    citations: dict[int, Citation] = {}
    for e in picked:  # best first: the first sentence of a passage is its quote
        rank = e.passage.rank
        citations.setdefault(rank, Citation(n=rank, passage=e.passage, quote=e.text))
    ordered = sorted(
        picked, key=lambda e: (published(e.passage) or _UNDATED, e.passage.start + e.start)
    )
    lines = []
    for e in ordered:
        p = e.passage
        where_from = " · ".join(x for x in (p.source, p.title) if x)
        head = show_date(published(p)) + (f" ({where_from})" if where_from else "")
        lines.append(f"- {head}: {e.text} [{p.rank}]")
    return "\n".join(lines), [citations[n] for n in sorted(citations)]


def _repeats(e: Evidence, picked: list[Evidence]) -> bool:
    """A near-copy of a sentence already picked (another outlet's copy of it)."""
    if e.vector is None:
        return False
    return any(p.vector is not None and float(np.dot(e.vector, p.vector)) > 0.9 for p in picked)


def span_note(citations: list[Citation]) -> str:
    """One line when the cited articles lie more than a week apart."""
    days = sorted({d for c in citations if (d := published(c.passage)) is not None})
    if len(days) < 2 or (days[-1] - days[0]).days < 7:
        return ""
    weeks = round((days[-1] - days[0]).days / 7)
    frame = Timeframe(since=days[0], until=days[-1], phrase="")
    return f"The evidence spans {weeks} weeks ({frame.label})."


def window_note(timeframe: Timeframe | None) -> str:
    if timeframe is None:
        return ""
    if not timeframe.applied:
        return f"No article is from {timeframe.label}; all articles up to the as-of date were used."
    return f"Articles from {timeframe.label}."


def also_reported(citations: list[Citation], lexical: LexicalIndex | None) -> None:
    """Fill each citation's ``also_reported_by``: the outlets of the story's other copies."""
    if lexical is None:
        return
    stories = lexical.story_members(c.passage.story_id or c.passage.doc_id for c in citations)
    for c in citations:
        members = stories.get(c.passage.story_id or c.passage.doc_id, {})
        own = members.get(c.passage.doc_id, c.passage.source)
        others = {o for d, o in members.items() if d != c.passage.doc_id and o and o != own}
        c.also_reported_by = sorted(others)


def finish(answer: Answer, timeframe: Timeframe | None, lexical: LexicalIndex | None) -> None:
    """Dates on a finished answer: its window, the span of its evidence, the copies."""
    answer.timeframe = timeframe
    also_reported(answer.citations, lexical)
    notes = [window_note(timeframe), "" if answer.abstained else span_note(answer.citations)]
    extra = " ".join(n for n in notes if n and n not in answer.notice)
    if extra:
        answer.notice = f"{answer.notice} {extra}".strip()
