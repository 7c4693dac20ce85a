"""Fit the recency prior (assistant/index/recency_prior.json) on RealTime QA dev.

  python benchmarks/recency_fit.py --home /tmp/rtqa-home-time [--write]

For every dev question with a gold article (102), answered as of its quiz date, retrieval's
candidates are taken as ``ask`` takes them (question + options, the as-of bound, the question's
own window if it names one, the recent window's extra candidate lists) with raw fused scores.
The prior per age bin is ``P(bin | gold article) / P(bin | candidate article)`` (candidates
add-one smoothed, gold shrunk towards them with 10 pseudo-articles, articles counted once per
question: ``recency.fit_bins``); its weight is the grid point with the best
MRR@10 (then hit@5) after story diversification, checked by two-fold cross-validation over
quiz weeks (fit on the odd weeks, score on the even ones and back). ``--write`` stores the fit.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.answering import when
from assistant.desk import Desk
from assistant.index.recency import DAY, PRIOR_FILE, RecencyPrior, fit_bins
from assistant.index.retriever import diversify
from assistant.index.schema import NO_TIMESTAMP, compile_filters, day_end
from assistant.settings import load_settings
from assistant.types import Filters, Passage
from evals import realtimeqa
from evals.dataset import Case

EDGES = (8.0, 30.0)  # finer bins fit the dev questions better and generalise worse (docs)
WINDOW_DAYS = 14
WEIGHTS = tuple(x / 4 for x in range(0, 25))


def timestamp(published_at: str) -> int:
    if not published_at:
        return NO_TIMESTAMP
    parsed = datetime.fromisoformat(published_at)
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


@dataclass
class Pool:
    case: Case
    as_of_ts: int
    passages: list[Passage]
    stamps: np.ndarray


def pools(home: Path, cases: list[Case], window_days: int = WINDOW_DAYS) -> list[Pool]:
    """Each case's candidates with raw fused scores (a prior of weight 1 and all-zero ratios
    keeps the recent window's extra lists but changes no score)."""
    desk = Desk(load_settings(home=home))
    search = desk.search_engine
    zeros = (0.0,) * (len(EDGES) + 1)
    search.prior = RecencyPrior(EDGES, zeros, 0.0, 1.0, window_days)
    lexical = desk.index.current()
    out = []
    for case in cases:
        as_of = date.fromisoformat(str(case.asked_on))
        query = " ".join([case.question, *(case.choices or [])])
        filters, _ = when.apply(
            case.question, Filters(as_of=as_of), as_of, lambda f: search.holds(f, lexical)
        )
        found = search.candidates(query, compile_filters(filters), lexical=lexical)
        stamps = np.array([timestamp(p.published_at) for p in found.passages], dtype=np.int64)
        out.append(Pool(case, day_end(as_of), found.passages, stamps))
    desk.close()
    return out


def gold_stamps(cases: list[Case]) -> dict[str, int]:
    wanted = {g for c in cases for g in c.gold_doc_ids}
    out = {}
    with gzip.open(realtimeqa.data_dir() / realtimeqa.CORPUS, "rt", encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            if record["doc_id"] in wanted:
                out[record["doc_id"]] = timestamp(
                    str(record.get("publish_date") or "").replace("/", "-")
                )
    return out


def fit(pools_: list[Pool], gold_ts: dict[str, int]) -> RecencyPrior:
    gold_ages: list[float | None] = []
    cand_ages: list[float | None] = []
    for pool in pools_:
        for g in pool.case.gold_doc_ids:
            ts = gold_ts.get(g, NO_TIMESTAMP)
            gold_ages.append(None if ts == NO_TIMESTAMP else (pool.as_of_ts - ts) / DAY)
        seen: dict[str, int] = {}
        for p, ts in zip(pool.passages, pool.stamps, strict=True):
            seen.setdefault(p.doc_id, int(ts))
        cand_ages += [
            None if t == NO_TIMESTAMP else (pool.as_of_ts - t) / DAY for t in seen.values()
        ]
    ratios, undated = fit_bins(gold_ages, cand_ages, EDGES)
    return RecencyPrior(EDGES, tuple(ratios), undated, 1.0, WINDOW_DAYS)


def ranked_docs(pool: Pool, prior: RecencyPrior, k: int = 10, per_story: int = 2) -> list[str]:
    factors = prior.factors(pool.stamps, pool.as_of_ts)
    rescored = [
        p.model_copy(update={"score": p.score * float(f)})
        for p, f in zip(pool.passages, factors, strict=True)
    ]
    rescored.sort(key=lambda p: -p.score)
    return [p.doc_id for p in diversify(rescored, k, per_story)]


def metrics(pools_: list[Pool], prior: RecencyPrior) -> tuple[float, float]:
    """(hit@5, MRR@10) at document level."""
    hits, rr = [], []
    for pool in pools_:
        docs, gold = ranked_docs(pool, prior), set(pool.case.gold_doc_ids)
        hits.append(any(d in gold for d in docs[:5]))
        rank = next((i for i, d in enumerate(docs[:10], start=1) if d in gold), None)
        rr.append(1 / rank if rank else 0.0)
    return float(np.mean(hits)), float(np.mean(rr))


def best_weight(pools_: list[Pool], prior: RecencyPrior) -> tuple[float, tuple[float, float]]:
    scored = [(w, metrics(pools_, prior.with_weight(w))) for w in WEIGHTS]
    return max(scored, key=lambda item: (item[1][1], item[1][0], -item[0]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, required=True, help="an ingested dev corpus")
    parser.add_argument("--write", action="store_true", help=f"store the fit in {PRIOR_FILE}")
    args = parser.parse_args()
    cases = [c for c in realtimeqa.all_cases(realtimeqa.data_dir()) if c.gold_doc_ids]
    gold_ts = gold_stamps(cases)
    all_pools = pools(args.home, cases)
    prior = fit(all_pools, gold_ts)
    weight, (hit5, mrr) = best_weight(all_pools, prior)
    flat = metrics(all_pools, RecencyPrior.flat())
    print(f"{len(all_pools)} questions; log ratios {prior.log_ratio} undated {prior.undated}")
    print(f"no prior (as-of only):  hit@5 {flat[0]:.3f}  MRR@10 {flat[1]:.3f}")
    print(f"fitted weight {weight}:  hit@5 {hit5:.3f}  MRR@10 {mrr:.3f} (in-sample)")
    weeks = sorted({p.case.id[:8] for p in all_pools})
    folds = [[p for p in all_pools if weeks.index(p.case.id[:8]) % 2 == i] for i in (0, 1)]
    cv = []
    for train, test in ((folds[0], folds[1]), (folds[1], folds[0])):
        part = fit(train, gold_ts)
        w, _ = best_weight(train, part)
        cv.append((len(test), w, *metrics(test, part.with_weight(w))))
    n = sum(c[0] for c in cv)
    cv_hit = sum(c[0] * c[2] for c in cv) / n
    cv_mrr = sum(c[0] * c[3] for c in cv) / n
    weights = [c[1] for c in cv]
    print(f"2-fold CV over quiz weeks: hit@5 {cv_hit:.3f}  MRR@10 {cv_mrr:.3f} (weights {weights})")
    if args.write:
        data = {
            "edges_days": list(EDGES),
            "log_ratio": list(prior.log_ratio),
            "undated": prior.undated,
            "weight": weight,
            "window_days": WINDOW_DAYS,
            "fit": {
                "by": "benchmarks/recency_fit.py",
                "data": "RealTime QA dev, questions with a gold article, as of the quiz date",
                "questions": len(all_pools),
                "in_sample": {"hit_at_5": round(hit5, 3), "mrr_at_10": round(mrr, 3)},
                "cv_2fold_weeks": {"hit_at_5": round(cv_hit, 3), "mrr_at_10": round(cv_mrr, 3)},
                "no_prior": {"hit_at_5": round(flat[0], 3), "mrr_at_10": round(flat[1], 3)},
            },
        }
        PRIOR_FILE.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {PRIOR_FILE}")


if __name__ == "__main__":
    main()
