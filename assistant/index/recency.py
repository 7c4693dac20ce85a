"""A learnt prior on article age: how much likelier an article of a given age (days before the
question's as-of date) is to be the one that answers, than retrieval's candidates of that age.

The prior is a likelihood ratio per age bin, ``P(age bin | answering article) / P(age bin |
candidate)``, fitted by ``benchmarks/recency.py`` on RealTime QA dev (questions dated by their
quiz, gold articles known) and stored in ``recency_prior.json`` beside this module. Retrieval
multiplies each fused score by ``ratio ** weight`` (an additive log-prior on the log score), so
within one age bin the hybrid ranking is unchanged, and a corpus whose articles all fall into
the same bin (an archive far older than the as-of date) ranks exactly as without the prior.

``window_days``: the ages where the prior puts most of its mass get their own candidate lists
(a filtered dense and BM25 query), so a recent article is not lost below the whole archive's
top candidates before the prior can lift it.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from assistant.index.schema import NO_TIMESTAMP

log = logging.getLogger(__name__)
PRIOR_FILE = Path(__file__).with_name("recency_prior.json")
DAY = 86_400


@dataclass(frozen=True)
class RecencyPrior:
    edges_days: tuple[float, ...]  # bin i holds ages in [edges[i-1], edges[i]); the last is open
    log_ratio: tuple[float, ...]  # one per bin: len(edges_days) + 1
    undated: float  # log ratio for an article without a date
    weight: float
    window_days: int

    def __post_init__(self) -> None:
        if len(self.log_ratio) != len(self.edges_days) + 1:
            raise ValueError("recency prior: need one log ratio per age bin")

    @classmethod
    def flat(cls) -> RecencyPrior:
        return cls((), (0.0,), 0.0, 0.0, 0)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecencyPrior:
        return cls(
            edges_days=tuple(float(x) for x in data["edges_days"]),
            log_ratio=tuple(float(x) for x in data["log_ratio"]),
            undated=float(data["undated"]),
            weight=float(data["weight"]),
            window_days=int(data.get("window_days", 0)),
        )

    def with_weight(self, weight: float | None) -> RecencyPrior:
        if weight is None or weight == self.weight:
            return self
        return RecencyPrior(self.edges_days, self.log_ratio, self.undated, weight, self.window_days)

    @property
    def active(self) -> bool:
        return self.weight != 0 and any(self.log_ratio)

    def log_prior(self, published_ts: np.ndarray, as_of_ts: int) -> np.ndarray:
        """The log ratio of each publication time (``NO_TIMESTAMP``: undated)."""
        ts = np.asarray(published_ts, dtype=np.int64)
        age = (as_of_ts - ts) / DAY
        bins = np.searchsorted(np.asarray(self.edges_days, dtype=float), age, side="right")
        out = np.asarray(self.log_ratio, dtype=float)[bins]
        return np.where(ts == NO_TIMESTAMP, self.undated, out)

    def factors(self, published_ts: np.ndarray, as_of_ts: int) -> np.ndarray:
        """What each fused score is multiplied by."""
        return np.exp(self.weight * self.log_prior(published_ts, as_of_ts))


@cache
def load_prior(path: Path = PRIOR_FILE) -> RecencyPrior:
    """The fitted prior; a flat one (no effect) when the file is missing or unreadable."""
    try:
        prior = RecencyPrior.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("recency prior %s not used (%s): ranking ignores article age", path, exc)
        return RecencyPrior.flat()
    if not all(math.isfinite(x) for x in (*prior.log_ratio, prior.undated, prior.weight)):
        log.warning("recency prior %s has non-finite values: not used", path)
        return RecencyPrior.flat()
    return prior


def fit_bins(
    gold_ages: list[float | None],
    candidate_ages: list[float | None],
    edges_days: tuple[float, ...],
    strength: float = 10.0,
) -> tuple[list[float], float]:
    """Log likelihood ratios per age bin (and for undated; ``None`` ages are undated).

    The candidates' distribution ``q`` gets add-one smoothing; the gold distribution is shrunk
    towards ``q`` with ``strength`` pseudo-articles, so a bin with little evidence tends to a
    ratio of 1 (log 0) when it is common among candidates and is not boosted when empty.
    """
    n_bins = len(edges_days) + 1

    def histogram(ages: list[float | None]) -> np.ndarray:
        dated = np.array([a for a in ages if a is not None], dtype=float)
        counts = np.bincount(
            np.searchsorted(np.asarray(edges_days, dtype=float), dated, side="right"),
            minlength=n_bins,
        ).astype(float)
        return np.append(counts, float(sum(a is None for a in ages)))  # last: undated

    g, c = histogram(gold_ages), histogram(candidate_ages)
    q = (c + 1) / (c.sum() + len(c))
    p = (g + strength * q) / (g.sum() + strength)
    ratio = np.log(p / q)
    return [round(float(x), 4) for x in ratio[:-1]], round(float(ratio[-1]), 4)
