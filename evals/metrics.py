"""Per-case eval metrics. Each returns a ``Score``: a value, not applicable (NA), or an error:
never NaN, never a silent default. ``aggregate`` averages the values only and reports how many
cases were NA or errors next to the mean."""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from assistant.answering.verify import MARKER, Claim, clean_markers, split_claims
from assistant.text import content_terms, numbers_and_dates, numbers_supported, sentence_spans
from assistant.types import says_abstain
from evals.stats import mean_ci
from evals.stats import percentile as percentile  # re-exported: cost and latency metrics


@dataclass(frozen=True)
class Score:
    """``value`` set: scored. Both None: not applicable. ``error`` set: could not be scored."""

    value: float | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if self.value is not None and self.error is not None:
            raise ValueError("a Score has a value or an error, not both")
        if self.value is not None and not math.isfinite(self.value):
            raise ValueError(f"a Score value must be finite, got {self.value}")

    @classmethod
    def of(cls, value: float) -> Score:
        return cls(value=float(value))

    @classmethod
    def na(cls) -> Score:
        return cls()

    @classmethod
    def fail(cls, message: str) -> Score:
        return cls(error=message)

    @property
    def ok(self) -> bool:
        return self.value is not None

    def as_json(self) -> dict[str, Any]:
        if self.value is not None:
            return {"value": self.value}
        return {"error": self.error} if self.error is not None else {"na": True}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Score:
        if set(d) == {"value"}:
            return cls.of(d["value"])
        if d == {"na": True}:
            return cls.na()
        if set(d) == {"error"}:
            return cls.fail(str(d["error"]))
        raise ValueError(f"not a serialised Score: {d!r}")


def _ratio(num: float, den: float) -> Score:
    return Score.of(num / den) if den else Score.na()


# --- retrieval ---------------------------------------------------------------------------
def _top_k(ranked_doc_ids: Sequence[str], k: int) -> list[str]:
    """First ``k`` distinct ids, each at its first occurrence (several chunks of one doc)."""
    _check_k(k)
    return list(dict.fromkeys(ranked_doc_ids))[:k]


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def hit_at_k(ranked_doc_ids: Sequence[str], gold: Collection[str], k: int) -> Score:
    """1 if any gold doc is among the top-k distinct docs, else 0. NA without gold."""
    if not gold:
        return Score.na()
    return Score.of(float(any(d in gold for d in _top_k(ranked_doc_ids, k))))


def recall_at_k(ranked_doc_ids: Sequence[str], gold: Collection[str], k: int) -> Score:
    """``|gold ∩ top-k| / |gold|`` over distinct docs. NA without gold."""
    wanted = set(gold)
    if not wanted:
        return Score.na()
    return Score.of(len(wanted & set(_top_k(ranked_doc_ids, k))) / len(wanted))


def mrr_at_k(ranked_doc_ids: Sequence[str], gold: Collection[str], k: int = 10) -> Score:
    """``1 / rank`` of the best-ranked gold doc in the top-k distinct docs (ranks from 1),
    0 if none; several gold docs do not add up. NA without gold."""
    if not gold:
        return Score.na()
    for rank, doc in enumerate(_top_k(ranked_doc_ids, k), start=1):
        if doc in gold:
            return Score.of(1.0 / rank)
    return Score.of(0.0)


def ndcg_at_k(ranked_doc_ids: Sequence[str], gold: Collection[str], k: int = 10) -> Score:
    """``DCG / IDCG`` over the top-k distinct docs, binary gains: ``DCG = sum_{i=1..k} rel_i /
    log2(i + 1)``; IDCG has ``min(|gold|, k)`` relevant docs at the top. NA without gold."""
    wanted = set(gold)
    if not wanted:
        return Score.na()
    top = _top_k(ranked_doc_ids, k)
    dcg = sum(1.0 / math.log2(i + 1) for i, d in enumerate(top, start=1) if d in wanted)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(wanted), k) + 1))
    return Score.of(dcg / ideal)


def answer_bearing_at_k(passage_texts: Sequence[str], answers: Sequence[str], k: int) -> Score:
    """1 if a normalised answer occurs at token boundaries in a normalised top-k passage.
    NA without answers; an error when every answer normalises to the empty string."""
    _check_k(k)
    needles = _normalised_answers(answers)
    if isinstance(needles, Score):
        return needles
    hit = any(_contains(normalize_answer(p), needles) for p in passage_texts[:k])
    return Score.of(float(hit))


# --- answers -----------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ASCII_PUNCT = frozenset(string.punctuation)  # includes symbols such as $ % + that are not P*


def normalize_answer(s: str) -> str:
    """SQuAD normalisation: lowercase, delete punctuation (ASCII and Unicode, e.g. “ ” ‘ ’ —),
    drop the articles a/an/the, collapse whitespace."""
    kept = (c for c in s.lower() if c not in _ASCII_PUNCT and unicodedata.category(c)[0] != "P")
    text = "".join(kept)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _normalised_answers(answers: Sequence[str]) -> list[str] | Score:
    if not answers:
        return Score.na()
    needles = [n for n in (normalize_answer(a) for a in answers) if n]
    return needles or Score.fail("every acceptable answer normalises to the empty string")


def _contains(haystack: str, needles: Iterable[str]) -> bool:
    """Some needle occurs in the haystack as whole tokens (both already normalised)."""
    padded = f" {haystack} "
    return any(f" {n} " in padded for n in needles)


def exact_match(prediction: str, answers: Sequence[str]) -> Score:
    """``max_a 1[norm(prediction) == norm(a)]``. NA without answers."""
    if not answers:
        return Score.na()
    pred = normalize_answer(prediction)
    return Score.of(float(any(pred == normalize_answer(a) for a in answers)))


def _f1(pred: list[str], gold: list[str]) -> float:
    if not pred or not gold:
        return float(pred == gold)
    same = sum((Counter(pred) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, answers: Sequence[str]) -> Score:
    """``max_a F1`` of the normalised token bags: ``P = common/|pred|``, ``R = common/|gold|``,
    ``F1 = 2PR/(P+R)``. Both empty: 1; one empty: 0. NA without answers."""
    if not answers:
        return Score.na()
    pred = normalize_answer(prediction).split()
    return Score.of(max(_f1(pred, normalize_answer(a).split()) for a in answers))


def answer_recall(response: str, answers: Sequence[str]) -> Score:
    """1 if any normalised answer occurs in the normalised response at token boundaries
    ("1994" does not match "19945"). NA without answers."""
    needles = _normalised_answers(answers)
    if isinstance(needles, Score):
        return needles
    return Score.of(float(_contains(normalize_answer(response), needles)))


def answer_first(response: str, answers: Sequence[str]) -> Score:
    """1 if a normalised answer occurs in the response's first sentence (citation markers
    removed): the answer leads instead of being buried in the evidence. NA without answers."""
    needles = _normalised_answers(answers)
    if isinstance(needles, Score):
        return needles
    text = MARKER.sub("", response).strip()
    spans = sentence_spans(text)
    first = text[spans[0][0] : spans[0][1]] if spans else text
    return Score.of(float(_contains(normalize_answer(first), needles)))


def _choice_key(s: str) -> str:
    return normalize_answer(s) or " ".join(s.casefold().split())


def choice_accuracy(choice: str | None, answers: Sequence[str]) -> Score:
    """1 if the chosen option equals an acceptable one after normalisation (options that
    normalise to nothing, like "A", compare case-folded). No choice: 0. NA without answers."""
    if not answers:
        return Score.na()
    if choice is None:
        return Score.of(0.0)
    return Score.of(float(any(_choice_key(choice) == _choice_key(a) for a in answers)))


# --- abstention --------------------------------------------------------------------------
def abstention_scores(pairs: Iterable[tuple[bool, bool]]) -> dict[str, Score]:
    """Over ``(abstained, must_abstain)`` cases, A = abstained, M = must abstain:
    ``abstain_precision = |A∩M| / |A|``, ``abstain_recall = |A∩M| / |M|``,
    ``answered_precision = |¬A∩¬M| / |¬A|``, ``answer_rate = |¬A∩¬M| / |¬M|``;
    each NA when its denominator is 0."""
    counts = Counter((bool(a), bool(m)) for a, m in pairs)
    both, wrongly = counts[True, True], counts[True, False]
    missed, answered = counts[False, True], counts[False, False]
    return {
        "abstain_precision": _ratio(both, both + wrongly),
        "abstain_recall": _ratio(both, both + missed),
        "answered_precision": _ratio(answered, answered + missed),
        "answer_rate": _ratio(answered, answered + wrongly),
    }


# --- citations (ALCE) --------------------------------------------------------------------

# judge(premise passages, claim): do the passages entail the claim? None: the judge failed
Judge = Callable[[Sequence[str], str], bool | None]


@dataclass
class CitationResult:
    recall: Score
    precision: Score
    n_sentences: int  # sentences scored (brief header lines excluded)
    n_citations: int  # (sentence, in-range passage) pairs
    judge_errors: int  # judge calls that returned None


def is_abstention(answer_text: str) -> bool:
    """Empty, or says the app's abstention sentence (as the answer pipeline does)."""
    return not answer_text.strip() or says_abstain(answer_text)


def answer_claims(answer_text: str, n_passages: int) -> list[Claim]:
    """The answer's sentences with in-range citations: ``clean_markers`` drops markers outside
    ``1..n_passages``, then ``split_claims``. Extractive-brief header lines ("Title (Source ·
    2024-03-07)": not a "- " bullet, no citation marker, followed by a "- " bullet line) are
    dropped first, whole, whatever punctuation the headline has."""
    cleaned, _ = clean_markers(answer_text, n_passages)
    return [c for c in split_claims(_without_headers(cleaned)) if c.text]


def _without_headers(text: str) -> str:
    lines = text.splitlines()
    kept = []
    for i, line in enumerate(lines):
        following = next((x for x in lines[i + 1 :] if x.strip()), "")
        header = (
            line.strip()
            and not line.lstrip().startswith("- ")
            and not MARKER.search(line)
            and following.lstrip().startswith("- ")
        )
        if not header:
            kept.append(line)
    return "\n".join(kept)


def citation_scores(answer_text: str, passages: Sequence[str], judge: Judge) -> CitationResult:
    """Citation recall and precision as in ALCE (Gao et al. 2023, §2.2 and its eval.py).

    Sentence ``s`` (``answer_claims``) has in-range citations ``C``, ``[n]`` = ``passages[n-1]``
    (out-of-range markers are ignored here; ``audit_answer`` counts them).

    * recall = mean over sentences of ``1[C non-empty and judge(C, s)]``. A judge error on
      ``judge(C, s)`` drops ``s`` from recall and precision; every sentence errored: an error.
    * precision = relevant / scored (sentence, citation) pairs, where ``c`` in ``C`` is relevant
      iff ``judge(C, s)`` and (``judge([c], s)`` or not ``judge(C \\ {c}, s)``); with one
      citation that is ``judge(C, s)``. When ``C`` does not entail ``s``, all of ``C`` is
      irrelevant (as ALCE's code). A pair whose judge call errors is dropped; all dropped: error.

    Both NA for an empty answer or an abstention; recall NA without sentences, precision NA
    without citations."""
    if is_abstention(answer_text):
        return CitationResult(Score.na(), Score.na(), 0, 0, 0)
    claims = answer_claims(answer_text, len(passages))
    supported: list[float] = []
    relevant: list[float] = []
    n_citations = errors = 0
    for claim in claims:
        cited = [passages[n - 1] for n in claim.cited]
        n_citations += len(cited)
        if not cited:
            supported.append(0.0)
            continue
        joint = judge(cited, claim.text)
        if joint is None:
            errors += 1
            continue
        supported.append(float(joint))
        if not joint or len(cited) == 1:
            relevant += [float(joint)] * len(cited)
            continue
        for i in range(len(cited)):
            verdict, calls_failed = _relevant(cited, i, claim.text, judge)
            errors += calls_failed
            if verdict is not None:
                relevant.append(float(verdict))
    recall = _mean_or(supported, bool(claims), "judge failed on every sentence")
    precision = _mean_or(relevant, n_citations > 0, "judge failed on every citation")
    return CitationResult(recall, precision, len(claims), n_citations, errors)


def _relevant(cited: Sequence[str], i: int, claim: str, judge: Judge) -> tuple[bool | None, int]:
    """(relevant?, judge errors) for ``cited[i]`` given the full set entails ``claim``."""
    alone = judge([cited[i]], claim)
    if alone is None:
        return None, 1
    if alone:
        return True, 0
    rest = judge([p for j, p in enumerate(cited) if j != i], claim)
    return (None, 1) if rest is None else (not rest, 0)


def _mean_or(values: list[float], applicable: bool, message: str) -> Score:
    if not applicable:
        return Score.na()
    return Score.of(sum(values) / len(values)) if values else Score.fail(message)


# --- structural audit --------------------------------------------------------------------
@dataclass
class Audit:
    uncited_factual: int  # sentences without citations that state a number/date or facts
    out_of_range: int  # markers [n] with n < 1 or n > n_passages, in the raw text
    unretrieved: int  # (sentence, [n]) pairs in range whose passage text is missing or blank
    numbers_missing: int  # cited sentences with a number/date found in no cited passage
    sentences: int  # sentences audited (brief header lines excluded)


def audit_answer(answer_text: str, n_passages: int, passages: Sequence[str]) -> Audit:
    """Structural citation checks, no judge. Sentences are ``answer_claims``; one is factual
    with a number/date (``numbers_and_dates``) or >= 3 distinct ``content_terms``, never the
    abstention sentence. ``out_of_range`` counts every number of every raw marker (``[2, 9]``
    with 3 passages: 1). ``numbers_missing``: ``not numbers_supported(s, cited texts joined)``
    over cited passages that have text (all missing: only counted as unretrieved)."""
    _, out_of_range = clean_markers(answer_text, n_passages)
    claims = answer_claims(answer_text, n_passages)
    uncited = unretrieved = missing = 0
    for claim in claims:
        if not claim.cited:
            uncited += _is_factual(claim.text)
            continue
        texts = [_passage_text(passages, n) for n in claim.cited]
        have = [t for t in texts if t is not None]
        unretrieved += len(texts) - len(have)
        if have and not numbers_supported(claim.text, " | ".join(have)):
            missing += 1
    return Audit(uncited, out_of_range, unretrieved, missing, len(claims))


def _passage_text(passages: Sequence[str], n: int) -> str | None:
    return passages[n - 1] if n <= len(passages) and passages[n - 1].strip() else None


def _is_factual(sentence: str) -> bool:
    if is_abstention(sentence):
        return False
    return bool(numbers_and_dates(sentence)) or len(set(content_terms(sentence))) >= 3


# --- what verification let through and what it took away --------------------------------
@dataclass
class Delivered:
    unsupported: Score  # delivered sentences the offline check rejects, or factual uncited
    unsupported_rate: Score  # the same over the delivered sentences
    supported_kept: Score  # share of the raw reply's supported sentences that were delivered


def _claim_key(text: str) -> str:
    return " ".join(normalize_answer(text).split())


def delivered_scores(
    answer_text: str, raw_text: str | None, passages: Sequence[str], judge: Judge
) -> Delivered:
    """How honest the delivered answer is, and what verification cost (goal: 0 and >= .95).

    ``answer_text`` is what the user got, ``raw_text`` the model's reply before verification
    (None in extractive mode), ``passages`` the numbered passages' texts, ``judge`` the offline
    check (``evals.judge.OfflineJudge``). Sentences are ``answer_claims`` of each text.

    * unsupported = delivered sentences that are factual (``audit_answer``'s rule) and uncited,
      or cited and not supported by their cited passages jointly; unsupported_rate = that /
      delivered sentences. NA for an abstention or an empty answer.
    * supported_kept = |raw sentences supported by their cited passages that occur in the
      answer (same text once normalised)| / |raw sentences supported|. NA without a raw reply,
      for an abstention, or when the raw reply had no supported sentence. A judge error leaves
      a sentence out of both sides; all of them erroring is an error."""
    if is_abstention(answer_text):
        return Delivered(Score.na(), Score.na(), Score.na())
    delivered = answer_claims(answer_text, len(passages))
    bad = errors = 0
    for claim in delivered:
        if not claim.cited:
            bad += _is_factual(claim.text)
            continue
        verdict = judge([passages[n - 1] for n in claim.cited], claim.text)
        if verdict is None:
            errors += 1
        else:
            bad += not verdict
    scored = len(delivered) - errors
    if delivered and not scored:
        unsupported = rate = Score.fail("judge failed on every delivered sentence")
    else:
        unsupported, rate = Score.of(bad), _ratio(bad, scored)
    return Delivered(unsupported, rate, _supported_kept(raw_text, delivered, passages, judge))


def _supported_kept(
    raw_text: str | None, delivered: Sequence[Claim], passages: Sequence[str], judge: Judge
) -> Score:
    if raw_text is None or is_abstention(raw_text):
        return Score.na()
    shown = {_claim_key(c.text) for c in delivered}
    supported = kept = errors = 0
    for claim in answer_claims(raw_text, len(passages)):
        if not claim.cited:
            continue
        verdict = judge([passages[n - 1] for n in claim.cited], claim.text)
        if verdict is None:
            errors += 1
        elif verdict:
            supported += 1
            kept += _claim_key(claim.text) in shown
    if not supported and errors:
        return Score.fail("judge failed on every cited sentence of the raw reply")
    return _ratio(kept, supported)


# --- aggregation -------------------------------------------------------------------------
@dataclass
class Aggregate:
    mean: float | None  # over the values only
    n: int  # cases with a value
    n_na: int
    n_error: int
    ci_low: float | None
    ci_high: float | None

    @property
    def coverage(self) -> float | None:
        """``n / (n + n_na + n_error)``; None with no cases."""
        total = self.n + self.n_na + self.n_error
        return self.n / total if total else None

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "coverage": self.coverage}


def aggregate(
    scores: Sequence[Score], bootstrap: int = 1000, seed: int = 0, alpha: float = 0.05
) -> Aggregate:
    """Mean of the values with a ``1 - alpha`` percentile-bootstrap CI (``bootstrap``
    resamples of the values, seeded). NA and error scores are counted, never averaged.
    The CI is None with fewer than 2 values; the mean is None with none."""
    values = [s.value for s in scores if s.value is not None]
    n_error = sum(s.error is not None for s in scores)
    mean, low, high = mean_ci(values, bootstrap, seed, alpha)
    return Aggregate(mean, len(values), len(scores) - len(values) - n_error, n_error, low, high)
