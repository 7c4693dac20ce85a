"""The values the core returns; every surface renders these, nothing else.

All are pydantic models, so an :class:`Answer`, a :class:`Turn` or a whole
:class:`Conversation` survives a trip through JSON (``model_dump_json`` /
``model_validate_json``): a bot can keep thread history across a restart. ``Answer.as_json``
is the stable ``ask --json`` contract (README), and ``Answer.from_contract`` reads it back.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ABSTAIN_TEXT = "I couldn't find this in the ingested articles."


def says_abstain(text: str) -> bool:
    """Whether ``text`` contains the abstention sentence (a model may add words around it)."""
    return ABSTAIN_TEXT.rstrip(".").lower() in text.lower()


Mode = Literal["llm", "extractive"]


class Filters(BaseModel):
    """Which articles a question may draw on (compiled once in ``index.schema``)."""

    model_config = ConfigDict(frozen=True)

    since: date | None = None
    until: date | None = None
    source: str | None = None
    # the day the question is asked on: nothing published after it is used (None: today);
    # relative dates in the question ("this week") are read against it
    as_of: date | None = None

    @property
    def active(self) -> bool:
        return self.since is not None or self.until is not None or bool(self.source)


class Timeframe(BaseModel):
    """The date window a question's own words asked for ("this week"), resolved against its
    as-of date; the answer says it used it."""

    model_config = ConfigDict(frozen=True)

    since: date
    until: date
    phrase: str  # the words of the question it was read from
    applied: bool = True  # False: no article falls in it, so the question was not limited

    @property
    def label(self) -> str:
        """E.g. "13–19 March 2022", "28 February – 6 March 2022", "18 March 2022"."""
        a, b = self.since, self.until
        if a == b:
            return f"{a.day} {a:%B %Y}"
        if (a.year, a.month) == (b.year, b.month):
            return f"{a.day}–{b.day} {b:%B %Y}"
        if a.year == b.year:
            return f"{a.day} {a:%B} – {b.day} {b:%B %Y}"
        return f"{a.day} {a:%B %Y} – {b.day} {b:%B %Y}"

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "phrase": self.phrase,
            "label": self.label,
            "applied": self.applied,
        }


class Passage(BaseModel):
    """A retrieved chunk of an article, with its rank in this answer's passage list."""

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
    story_id: str = ""  # copies of one story (syndicated, reprinted) share it; "" = doc_id
    path: str = ""  # the file it was ingested from ("" for lines of an archive without one)

    @property
    def location(self) -> str:
        """Where a reader finds the article: its URL, else the file it was ingested from."""
        return self.url or self.path

    def as_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "doc_id": self.doc_id,
            "chunk_id": self.chunk_id,
            "score": round(self.score, 6),
            "title": self.title,
            "source": self.source,
            "url": self.url,
            "location": self.location,
            "published_at": self.published_at,
            "text": self.text,
        }


class Citation(BaseModel):
    """``n`` is the marker in the answer text: one number per cited article, 1..N in order of
    first use. An article cited through two passages has two citations with the same ``n``;
    ``rank`` is the passage's rank in ``Answer.passages``."""

    n: int
    passage: Passage
    quote: str
    supported: bool = True
    also_reported_by: list[str] = Field(default_factory=list)  # outlets with copies of it
    rank: int = 0  # 0: the passage's own rank

    def model_post_init(self, __context: Any) -> None:
        if not self.rank:
            self.rank = self.passage.rank

    def as_json(self) -> dict[str, Any]:
        p = self.passage
        return {
            "n": self.n,
            "rank": self.rank,
            "doc_id": p.doc_id,
            "chunk_id": p.chunk_id,
            "title": p.title,
            "source": p.source,
            "url": p.url,
            "location": p.location,
            "published_at": p.published_at,
            "quote": self.quote,
            "supported": self.supported,
            "also_reported_by": self.also_reported_by,
        }


class Usage(BaseModel):
    """Tokens the model reported; ``None`` ("unknown") once any call went unreported."""

    prompt_tokens: int | None = 0
    completion_tokens: int | None = 0

    @property
    def total_tokens(self) -> int | None:
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return self.prompt_tokens + self.completion_tokens

    def add(self, prompt: int | None, completion: int | None) -> None:
        if prompt is None or completion is None or self.prompt_tokens is None:
            self.prompt_tokens = self.completion_tokens = None
            return
        self.prompt_tokens += prompt
        self.completion_tokens = (self.completion_tokens or 0) + completion


class RemovedSentence(BaseModel):
    """A sentence of the model's reply that verification kept from the reader, and why."""

    text: str
    reason: str


class Answer(BaseModel):
    question: str
    text: str
    mode: Mode
    abstained: bool
    citations: list[Citation] = Field(default_factory=list)
    passages: list[Passage] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    usage: Usage = Field(default_factory=Usage)
    notice: str = ""  # one line shown above the answer (fallbacks, extractive label)
    standalone_question: str = ""  # the follow-up rewritten to stand alone, when it was
    choice: str | None = None
    raw_text: str = ""  # LLM mode: the model's reply before verification
    removed: list[RemovedSentence] = Field(default_factory=list)
    as_of: date | None = None  # the date the question was answered as of
    timeframe: Timeframe | None = None  # the window the question's words asked for
    # ``text`` with passage-rank markers instead of article numbers (eval metrics; not in the
    # JSON contract, rebuilt from the citations by ``numbering.to_passage_markers``)
    ranked_text: str = ""

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
            "usage": {**self.usage.model_dump(), "total_tokens": self.usage.total_tokens},
        }
        if self.standalone_question and self.standalone_question != self.question:
            data["standalone_question"] = self.standalone_question
        if self.choice is not None:
            data["choice"] = self.choice
        if self.mode == "llm":
            data["removed"] = [r.model_dump() for r in self.removed]
        if self.as_of is not None:
            data["as_of"] = self.as_of.isoformat()
        if self.timeframe is not None:
            data["timeframe"] = self.timeframe.as_json()
        return data

    @classmethod
    def from_contract(cls, data: dict[str, Any]) -> Answer:
        """Rebuild an answer from its ``ask --json`` form (citations point at passages by
        chunk id; fields the contract leaves out take their defaults)."""
        passages = [
            Passage.model_validate({"path": "" if p.get("url") else p.get("location", ""), **p})
            for p in data.get("passages", [])
        ]
        by_chunk = {p.chunk_id: p for p in passages}
        citations = []
        for c in data.get("citations", []):
            passage = by_chunk.get(c["chunk_id"]) or Passage(
                rank=c.get("rank", c["n"]),
                chunk_id=c["chunk_id"],
                doc_id=c["doc_id"],
                text=c.get("quote", ""),
                score=0.0,
                **{k: c.get(k, "") for k in ("title", "source", "url", "published_at")},
            )
            citations.append(
                Citation(
                    n=c["n"],
                    passage=passage,
                    quote=c["quote"],
                    supported=c["supported"],
                    also_reported_by=c.get("also_reported_by", []),
                    rank=c.get("rank", passage.rank),
                )
            )
        return cls(
            question=data["question"],
            text=data["answer"],
            mode=data["mode"],
            abstained=data["abstained"],
            notice=data.get("notice", ""),
            citations=citations,
            passages=passages,
            timings=data.get("timings", {}),
            usage=Usage(
                prompt_tokens=data.get("usage", {}).get("prompt_tokens", 0),
                completion_tokens=data.get("usage", {}).get("completion_tokens", 0),
            ),
            standalone_question=data.get("standalone_question", ""),
            choice=data.get("choice"),
            removed=[RemovedSentence.model_validate(r) for r in data.get("removed", [])],
            as_of=data.get("as_of"),
            timeframe=data.get("timeframe"),
        )


class Turn(BaseModel):
    """One earlier exchange, handed back in ``history`` for follow-up questions."""

    question: str
    answer: Answer

    def __init__(self, *args: Any, **data: Any) -> None:
        # Turn(question, answer) reads as well as the keyword form
        super().__init__(**dict(zip(("question", "answer"), args, strict=False)), **data)


def _now() -> datetime:
    return datetime.now(UTC)


class Conversation(BaseModel):
    """A thread of questions and answers; its turns are the history of the next question."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    created_at: datetime = Field(default_factory=_now)
    turns: list[Turn] = Field(default_factory=list)

    def add(self, answer: Answer) -> Turn:
        turn = Turn(question=answer.question, answer=answer)
        self.turns.append(turn)
        return turn


# -- what the desk reports besides answers -------------------------------------------------
class Stats(BaseModel):
    documents: int
    chunks: int
    collection: str
    embedder: str
    chunker: str
    store: str
    llm: str | None
    generation: int
    stories: int = 0  # documents grouped into stories (copies of one article count once)


class SourceInfo(BaseModel):
    source: str  # "" for articles without one
    articles: int
    first_published: str | None  # YYYY-MM-DD, None when no article of it is dated
    last_published: str | None


class PassageContext(BaseModel):
    """A passage with the article text around it (the neighbouring chunks, overlap removed)."""

    passage: Passage
    before: str = ""
    after: str = ""
    path: str = ""  # the file it was ingested from


# -- stream events ---------------------------------------------------------------------------
class PassagesFound(BaseModel):
    """First event of every answer: what retrieval found (a surface may show sources early)."""

    type: Literal["passages"] = "passages"
    passages: list[Passage]
    standalone_question: str = ""


class TextDelta(BaseModel):
    """A piece of answer text as it is produced. Provisional: the final :class:`Answer` is
    what was checked (markers may be dropped, sentences removed, or the mode may change)."""

    type: Literal["delta"] = "delta"
    text: str


class Notice(BaseModel):
    """Something the reader should know while the answer is produced."""

    type: Literal["notice"] = "notice"
    kind: Literal["fallback", "abstain", "removed", "info"] = "info"
    text: str


class Final(BaseModel):
    """Last event: the checked answer."""

    type: Literal["final"] = "final"
    answer: Answer


Event = Annotated[PassagesFound | TextDelta | Notice | Final, Field(discriminator="type")]
