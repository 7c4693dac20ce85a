"""Check that each cited sentence is supported by the passage it cites.

A sentence is supported by a passage when every number and date in it appears in the passage,
and its meaning is there too: the best-matching passage sentence is close in embedding space,
or most of the sentence's content words occur in the passage. Markers that point at no passage
are removed before anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.answering.sentvec import SentenceVectors
from assistant.models.embeddings import embed_array
from assistant.text import content_terms, numbers_supported, overlap, sentence_spans
from assistant.types import Citation, Passage

MARKER = re.compile(r"(\s*)\[(\d+(?:\s*[,;–-]\s*\d+)*)\]")
SEMANTIC_MIN = 0.62  # cosine of claim vs best passage sentence
LEXICAL_MIN = 0.6  # share of the claim's content words found in the passage
MIXED = (0.45, 0.4)  # both moderately high also counts


@dataclass
class Claim:
    text: str  # the sentence without its markers
    cited: list[int]
    supported_by: list[int] = field(default_factory=list)

    @property
    def supported(self) -> bool:
        return bool(self.supported_by)


@dataclass
class Support:
    supported: bool
    semantic: float
    lexical: float
    numbers_ok: bool
    quote: str


def _numbers(group: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*[,;]\s*", group):
        if re.fullmatch(r"\d+\s*[–-]\s*\d+", part):
            a, b = (int(x) for x in re.split(r"\s*[–-]\s*", part))
            out.extend(range(a, b + 1) if 0 < b - a < 10 else [a, b])
        elif part.strip().isdigit():
            out.append(int(part))
    return out


def strip_markers(text: str) -> str:
    return MARKER.sub("", text).strip()


def clean_markers(text: str, n_passages: int) -> tuple[str, int]:
    """Drop references to passages that do not exist; return (text, how many dropped)."""
    dropped = 0

    def fix(match: re.Match[str]) -> str:
        nonlocal dropped
        nums = _numbers(match.group(2))
        good = [n for n in dict.fromkeys(nums) if 1 <= n <= n_passages]
        dropped += sum(not 1 <= n <= n_passages for n in nums)
        return match.group(1) + "".join(f"[{n}]" for n in good) if good else ""

    return MARKER.sub(fix, text), dropped


def split_claims(text: str) -> list[Claim]:
    claims = []
    for a, b in sentence_spans(text):
        sentence = text[a:b]
        cited = [n for m in MARKER.finditer(sentence) for n in _numbers(m.group(2))]
        claims.append(Claim(strip_markers(sentence), list(dict.fromkeys(cited))))
    return claims


class SupportChecker:
    """Scores (sentence, passage) pairs against the passage's cached sentence vectors."""

    def __init__(self, embedder: Embeddings, sentences: SentenceVectors | None = None) -> None:
        self.embedder = embedder
        self.sentences = sentences or SentenceVectors(embedder)

    def check(self, claim: str, passage: Passage, claim_vec: np.ndarray | None = None) -> Support:
        spans, vecs = self.sentences.get(passage)
        sents = [passage.text[a:b] for a, b in spans]
        if claim_vec is None:
            claim_vec = embed_array(self.embedder, [claim])[0]
        sims = vecs @ claim_vec
        best = int(np.argmax(sims))
        semantic = float(sims[best])
        lexical = overlap(content_terms(claim), content_terms(passage.text))
        numbers_ok = numbers_supported(claim, passage.text)
        meaning = (
            semantic >= SEMANTIC_MIN
            or lexical >= LEXICAL_MIN
            or (semantic >= MIXED[0] and lexical >= MIXED[1])
        )
        return Support(numbers_ok and meaning, semantic, lexical, numbers_ok, sents[best])


def check_citations(
    text: str, passages: list[Passage], checker: SupportChecker
) -> tuple[str, list[Claim], list[Citation], int]:
    """Returns (cleaned text, claims, one citation per cited passage, markers dropped)."""
    cleaned, dropped = clean_markers(text, len(passages))
    claims = split_claims(cleaned)
    cited_claims = [c for c in claims if c.cited]
    vecs = embed_array(checker.embedder, [c.text for c in cited_claims]) if cited_claims else []
    verdicts: dict[int, list[Support]] = {}
    for claim, vec in zip(cited_claims, vecs, strict=True):
        for n in claim.cited:
            support = checker.check(claim.text, passages[n - 1], vec)
            verdicts.setdefault(n, []).append(support)
            if support.supported:
                claim.supported_by.append(n)
    citations = []
    for n in sorted(verdicts):
        supports = verdicts[n]
        best = max(supports, key=lambda s: s.semantic)
        citations.append(
            Citation(
                n=n,
                passage=passages[n - 1],
                quote=best.quote,
                supported=all(s.supported for s in supports),
            )
        )
    return cleaned, claims, citations, dropped
