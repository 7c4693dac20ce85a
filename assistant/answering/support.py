"""Does a passage support a claim sentence? The offline check, used for every cited sentence.

A claim is supported by a passage when all of these hold:

* meaning: the best-matching passage sentence is close in embedding space, or most of the
  claim's content words occur in the passage (or both moderately);
* numbers and dates: each one in the claim is in the passage (digits or number words), and a
  count the passage gives as votes for / against / abstaining is not given as another;
* names: each named entity of the claim (a capitalised token after the first, or a run of them)
  is in the passage, in any case, possessive or not, as an acronym ("EU") of the passage's
  words or the other way round, as its demonym ("Chinese" for China) or, when not used as a
  place ("in Moscow"), as the country of its capital;
* polarity: no content word the claim puts under a negation (not, no longer, never, refused,
  declined, against, ...) is stated plainly in the matching passage sentence, nor the other way
  round, and a vote (for / against / abstained) is not turned into another;
* attribution: a quote or statement the claim gives to someone is not given by the passage to
  someone else (``extractive.speaker_of``).

The passage's title and source count as part of it (an answer may name the paper or use a
word of the headline), its publication date does not. Each failed check gives a short reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.answering.claim_checks import (
    entities_missing,
    polarity_conflict,
    speaker_conflict,
    stance_conflict,
    vote_count_conflict,
)
from assistant.answering.sentvec import SentenceVectors
from assistant.models.embeddings import embed_array
from assistant.text import content_terms, numbers_supported, overlap
from assistant.types import Passage

SEMANTIC_MIN = 0.62  # cosine of claim vs best passage sentence
LEXICAL_MIN = 0.6  # share of the claim's content words found in the passage
MIXED = (0.45, 0.4)  # both moderately high also counts
NUMBER_WORDS = {
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "fifteen": "15",
    "twenty": "20", "thirty": "30", "fifty": "50", "hundred": "100", "thousand": "1000",
    "million": "1000000", "billion": "1000000000", "dozen": "12",
}  # fmt: skip


@dataclass
class Support:
    supported: bool
    semantic: float
    lexical: float
    numbers_ok: bool
    quote: str  # the passage sentence that matches the claim best
    reason: str = ""  # why it is not supported ("" when it is)


def reference_text(passage: Passage) -> str:
    """The passage text with its title and source, as the checks see it. (Not its date: an
    article is often dated the day after the events it reports, and "they spoke on March 19"
    must not pass because the report came out then.)"""
    return "\n".join([passage.text, *(x for x in (passage.title, passage.source) if x)])


def number_words_supported(claim: str, reference: str) -> bool:
    """Every number word of the claim ("seven hours") is in the reference, spelled or in digits."""
    have = {w.lower() for w in re.findall(r"[A-Za-z]+|\d+", reference.replace(",", ""))}
    for word in re.findall(r"[A-Za-z]+", claim):
        digits = NUMBER_WORDS.get(word.lower())
        if digits and word.lower() not in have and digits not in have:
            return False
    return True


class SupportChecker:
    """Scores (sentence, passage) pairs against the passage's cached sentence vectors."""

    def __init__(self, embedder: Embeddings, sentences: SentenceVectors | None = None) -> None:
        self.embedder = embedder
        self.sentences = sentences if sentences is not None else SentenceVectors(embedder)

    def check(self, claim: str, passage: Passage, claim_vec: np.ndarray | None = None) -> Support:
        spans, vecs = self.sentences.get(passage)
        sents = [passage.text[a:b] for a, b in spans]
        if claim_vec is None:
            claim_vec = embed_array(self.embedder, [claim])[0]
        sims = vecs @ claim_vec
        order = [int(i) for i in np.argsort(-sims)]
        best = order[0]
        semantic = float(sims[best])
        reference = reference_text(passage)
        claim_terms = content_terms(claim)
        lexical = overlap(claim_terms, content_terms(reference))
        numbers_ok = numbers_supported(claim, reference) and number_words_supported(
            claim, reference
        )
        meaning = (
            semantic >= SEMANTIC_MIN
            or lexical >= LEXICAL_MIN
            or (semantic >= MIXED[0] and lexical >= MIXED[1])
        )
        reason = ""
        if not numbers_ok:
            reason = "a number or date is not in the passage"
        elif not meaning:
            reason = "the passage does not say this"
        else:
            # the sentences the claim most likely restates: by meaning, and by shared words
            by_words = sorted(
                range(len(sents)),
                key=lambda i: -overlap(claim_terms, content_terms(sents[i])),
            )
            near = list(dict.fromkeys([*order[:3], *by_words[:2]]))
            reason = self._conflict(claim, reference, sents, near)
        return Support(not reason, semantic, lexical, numbers_ok, sents[best], reason)

    @staticmethod
    def _conflict(claim: str, reference: str, sents: list[str], near: list[int]) -> str:
        missing = entities_missing(claim, reference)
        if missing:
            return f"{', '.join(missing)} not in the passage"
        if vote_count_conflict(claim, reference):
            return "a count is given for another side of the vote"
        if polarity_conflict(claim, [sents[i] for i in near]):
            return "the passage says the opposite (negation)"
        stances = [stance_conflict(claim, sents[i]) for i in near]
        if any(s is True for s in stances) and not any(s is False for s in stances):
            return "the passage records another vote"
        other = speaker_conflict(claim, sents, near)
        return f"the passage attributes this to {other}" if other else ""
