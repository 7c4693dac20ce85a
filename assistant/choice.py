"""Multiple choice: which option the retrieved evidence supports best."""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.text import content_terms, overlap, sentence_spans
from assistant.types import Passage


def parse_choice(reply: str, choices: Sequence[str]) -> str | None:
    """The option a model's reply names, by letter ("B", "B.", "(B)") or by its text."""
    match = re.match(r"\s*\(?([A-Za-z])\)?[.):\s]*", reply)
    if match:
        index = ord(match.group(1).upper()) - 65
        if 0 <= index < len(choices) and (len(reply.strip()) <= 3 or reply.strip()[1:2] in ".): "):
            return choices[index]
    lowered = reply.lower()
    named = [c for c in choices if c.lower() in lowered]
    return named[0] if len(named) == 1 else None


def choose_extractive(question: str, choices: Sequence[str], passages: Sequence[Passage]) -> str:
    """Score each option by how often it co-occurs with the question's words in the evidence.

    Per sentence: share of the option's content words present, times (0.5 + share of the
    question's content words present), weighted by passage rank. An option no passage
    mentions scores zero; ties go to the earlier option.
    """
    q_terms = content_terms(question)
    option_terms = [content_terms(c) or [c.lower()] for c in choices]
    scores = [0.0] * len(choices)
    for p in passages:
        weight = 1.0 / (1 + 0.3 * (p.rank - 1)) if p.rank else 0.5
        for a, b in sentence_spans(p.text):
            terms = content_terms(p.text[a:b])
            q_share = overlap(q_terms, terms)
            for i, opt in enumerate(option_terms):
                o_share = overlap(opt, terms)
                if o_share:
                    scores[i] += weight * o_share * (0.5 + q_share)
    best = max(range(len(choices)), key=lambda i: (scores[i], -i))
    return choices[best]
