"""Multiple choice: which option the retrieved evidence supports best."""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.answering.extractive import Evidence
from assistant.text import content_terms, overlap


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


def choose_extractive(question: str, choices: Sequence[str], evidence: Sequence[Evidence]) -> str:
    """The option named by the best evidence sentence.

    Each option scores ``max(sentence score x share of the option's content words in that
    sentence)`` over the scored evidence sentences (see ``extractive.score_sentences``), so an
    option only counts where the sentence is also about the question. A sum over all mentions
    is kept as tie-breaker; ties after that go to the earlier option.
    """
    option_terms = [content_terms(c) or [c.lower()] for c in choices]
    best = [0.0] * len(choices)
    total = [0.0] * len(choices)
    for e in evidence:
        terms = content_terms(e.text)
        for i, opt in enumerate(option_terms):
            share = overlap(opt, terms)
            if share:
                best[i] = max(best[i], e.score * share)
                total[i] += e.score * share
    pick = max(range(len(choices)), key=lambda i: (round(best[i], 6), total[i], -i))
    return choices[pick]
