"""The values the core call returns; every surface renders these, nothing else."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any, Literal

ABSTAIN_TEXT = "I couldn't find this in the ingested articles."


def says_abstain(text: str) -> bool:
    """Whether ``text`` contains the abstention sentence (a model may add words around it)."""
    return ABSTAIN_TEXT.rstrip(".").lower() in text.lower()


Mode = Literal["llm", "extractive"]


@dataclass(frozen=True)
class Filters:
    since: date | None = None
    until: date | None = None
    source: str | None = None

    @property
    def active(self) -> bool:
        return self.since is not None or self.until is not None or bool(self.source)

    @property
    def since_ts(self) -> int | None:
        if self.since is None:
            return None
        return int(datetime.combine(self.since, time.min, tzinfo=UTC).timestamp())

    @property
    def until_ts(self) -> int | None:
        if self.until is None:
            return None
        return int(datetime.combine(self.until, time.max, tzinfo=UTC).timestamp())

    def chroma_where(self) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        if self.since_ts is not None:
            clauses.append({"published_ts": {"$gte": self.since_ts}})
        if self.until_ts is not None:
            clauses.append({"published_ts": {"$lte": self.until_ts}})
        if self.source:
            clauses.append({"source": {"$eq": self.source}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}


@dataclass(eq=False)
class Passage:
    rank: int
    chunk_id: str
    doc_id: str
    text: str
    score: float
    title: str = ""
    source: str = ""
    url: str = ""
    author: str = ""
    published_at: str = ""
    start: int = 0
    end: int = 0
    dense: float = 0.0  # cosine similarity to the question
    lexical: float = 0.0  # BM25 score, 0 when BM25 did not find it

    def as_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "doc_id": self.doc_id,
            "chunk_id": self.chunk_id,
            "score": round(self.score, 6),
            "title": self.title,
            "source": self.source,
            "url": self.url,
            "published_at": self.published_at,
            "text": self.text,
        }


@dataclass
class Citation:
    n: int
    passage: Passage
    quote: str
    supported: bool = True

    def as_json(self) -> dict[str, Any]:
        p = self.passage
        return {
            "n": self.n,
            "doc_id": p.doc_id,
            "chunk_id": p.chunk_id,
            "title": p.title,
            "source": p.source,
            "url": p.url,
            "published_at": p.published_at,
            "quote": self.quote,
            "supported": self.supported,
        }


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, prompt: int, completion: int) -> None:
        self.prompt_tokens += prompt
        self.completion_tokens += completion


@dataclass
class Answer:
    question: str
    text: str
    mode: Mode
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    notice: str = ""  # one line shown above the answer (fallbacks, extractive label)
    standalone_question: str = ""  # the follow-up rewritten to stand alone, when it was
    choice: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "question": self.question,
            "answer": self.text,
            "mode": self.mode,
            "abstained": self.abstained,
            "notice": self.notice,
            "citations": [c.as_json() for c in self.citations],
            "passages": [p.as_json() for p in self.passages],
            "timings": {k: round(v, 1) for k, v in self.timings.items()},
            "usage": {**asdict(self.usage), "total_tokens": self.usage.total_tokens},
        }
        if self.standalone_question and self.standalone_question != self.question:
            data["standalone_question"] = self.standalone_question
        if self.choice is not None:
            data["choice"] = self.choice
        return data


@dataclass
class Turn:
    """One earlier exchange, handed back in ``history`` for follow-up questions."""

    question: str
    answer: Answer


@dataclass
class TextDelta:
    """A piece of answer text as it is produced (streaming form of ``answer``)."""

    text: str
