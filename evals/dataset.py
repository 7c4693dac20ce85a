"""Eval data: cases (JSON Lines) and suites (``suite.toml``), validated strictly on load.

Case fields: ``id`` (string or integer), ``question``, ``answers``, ``choices`` (2+ options or
null), ``gold_doc_ids``, ``must_abstain``, ``tags``, ``history`` (earlier questions of the same
conversation, asked first). Unknown fields are errors, so a typo like ``must_abstian`` cannot
silently change a case. Gold ids ``file:NAME`` name a file under a corpus root and become its
``ingest.loaders.path_doc_id`` (which depends on the checkout's location) at load time.

Error policy: :func:`load_cases` and :func:`load_suite` check the whole file and raise one
:class:`EvalDataError` listing every problem (the first ten, then a count), each naming the
file, the line (JSONL) and the field, so a hand-edited file is fixed in one pass.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import random
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import TypeAdapter, ValidationError

from assistant.errors import NewsdeskError
from assistant.settings import Settings
from ingest.loaders import path_doc_id

SUITE_FILE = "suite.toml"
FILE_PREFIX = "file:"
MAX_LISTED = 10
Kind = Literal["jsonl", "realtimeqa"]
Mode = Literal["extractive", "llm", "auto"]
# Settings a suite may not set: secrets belong in the environment, ``home`` to the runner.
FORBIDDEN_SETTINGS = {"home", "openai_api_key", "llm_api_key", "judge_api_key"}
# Kind-specific tables of suite.toml: key -> type. ``[realtimeqa]`` dir / weeks / limit.
OPTION_KEYS: dict[str, dict[str, type]] = {"realtimeqa": {"dir": str, "weeks": int, "limit": int}}


class EvalDataError(NewsdeskError):
    """A case or suite file cannot be used; the message names file, line and field."""

    def __init__(self, message: str, problems: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems) if problems else [message]


def _raise_if(problems: Sequence[str], where: Path | str) -> None:
    if not problems:
        return
    if len(problems) == 1:
        raise EvalDataError(problems[0], problems)
    lines = [f"{where}: {len(problems)} problems:", *problems[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        lines.append(f"... and {len(problems) - MAX_LISTED} more")
    raise EvalDataError("\n".join(lines), problems)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unknown(key: str, known: Iterable[str], what: str, table: str = "") -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean {table + close[0]!r}?)" if close else ""
    return f"field {table + key!r} is not a known {what}{hint}"


@dataclass
class Case:
    id: str
    question: str
    answers: list[str] = field(default_factory=list)
    choices: list[str] | None = None
    gold_doc_ids: list[str] = field(default_factory=list)
    must_abstain: bool = False
    tags: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)  # earlier questions, asked first
    asked_on: str | None = None  # ISO date the question was asked ("this week" questions)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


CASE_FIELDS = tuple(Case.__dataclass_fields__)
_STRING_LISTS = ("answers", "gold_doc_ids", "tags", "history")


def _strings(record: Mapping[str, Any], name: str, problems: list[str]) -> list[str] | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, list):
        problems.append(f"field {name!r} must be a list of strings, got {_show(value)}")
        return None
    bad = [v for v in value if not isinstance(v, str) or not v.strip()]
    if bad:
        problems.append(f"field {name!r} must hold non-empty strings, got {_show(bad[0])}")
        return None
    return list(value)


def case_from_json(record: Any) -> tuple[Case | None, list[str]]:
    """Validate one decoded line: the case (None when unusable) and the problems found."""
    if not isinstance(record, dict):
        return None, [f"line is not a JSON object (got {type(record).__name__})"]
    problems = [_unknown(k, CASE_FIELDS, "field") for k in record if k not in CASE_FIELDS]
    raw_id = record.get("id")
    if raw_id is None:
        problems.append("field 'id' is missing")
    elif isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or not str(raw_id).strip():
        problems.append(f"field 'id' must be a non-empty string or integer, got {_show(raw_id)}")
    question = record.get("question")
    if question is None:
        problems.append("field 'question' is missing")
    elif not isinstance(question, str) or not question.strip():
        problems.append(f"field 'question' must be a non-empty string, got {_show(question)}")
    lists = {name: _strings(record, name, problems) for name in _STRING_LISTS}
    choices = _strings(record, "choices", problems)
    if choices is not None and len(choices) < 2:
        problems.append(f"field 'choices' needs at least 2 options, got {len(choices)}")
    asked_on = record.get("asked_on")
    if asked_on is not None:
        try:
            date.fromisoformat(str(asked_on))
        except ValueError:
            problems.append(f"field 'asked_on' must be a YYYY-MM-DD date, got {_show(asked_on)}")
    must_abstain = record.get("must_abstain", False)
    if not isinstance(must_abstain, bool):
        problems.append(f"field 'must_abstain' must be true or false, got {_show(must_abstain)}")
    if problems:
        return None, problems
    answers, gold, tags, history = (lists[name] or [] for name in _STRING_LISTS)
    case = Case(str(raw_id).strip(), question.strip(), answers, choices, gold, must_abstain, tags)
    case.history = history
    case.asked_on = asked_on
    return case, check_case(case)


def check_case(case: Case) -> list[str]:
    """Rules across fields (shared by the benchmark adapters)."""
    if case.must_abstain and case.answers:
        return [f"field 'answers' must be empty for a must_abstain case (has {case.answers!r})"]
    if case.choices and case.answers:
        options = {" ".join(c.casefold().split()) for c in case.choices}
        for answer in case.answers:
            if " ".join(answer.casefold().split()) not in options:
                return [f"field 'answers': {answer!r} is not one of the choices"]
    if not (case.must_abstain or case.answers or case.gold_doc_ids):
        return ["nothing to score: give 'answers' or 'gold_doc_ids', or set 'must_abstain'"]
    return []


def load_cases(path: Path) -> list[Case]:
    """Read and validate a JSONL case file; raises one :class:`EvalDataError` for all problems."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise EvalDataError(f"{path}: cases file not found") from None
    except OSError as exc:
        raise EvalDataError(f"{path}: cannot read cases file ({exc.strerror})") from None
    cases: list[Case] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: malformed JSON ({exc.msg}, column {exc.colno})")
            continue
        except UnicodeDecodeError:
            problems.append(f"{where}: line is not UTF-8 text")
            continue
        case, found = case_from_json(record)
        problems.extend(f"{where}: {problem}" for problem in found)
        if case is None:
            continue
        if case.id in seen:
            first = seen[case.id]
            problems.append(
                f"{where}: field 'id': duplicate id {case.id!r} (first on line {first})"
            )
            continue
        seen[case.id] = lineno
        cases.append(case)
    if not problems and not cases:
        problems.append(f"{path}: no cases in the file")
    _raise_if(problems, path)
    return cases


def gold_path(name: str, corpus_roots: Sequence[Path]) -> Path | None:
    """The corpus file ``name`` (relative to a folder root, or a root file's own name)."""
    for root in corpus_roots:
        candidate = root / name if root.is_dir() else root
        if candidate.is_file() and (candidate != root or root.name == name):
            return candidate
    return None


def resolve_gold(case: Case, corpus_roots: Sequence[Path]) -> Case:
    """``file:NAME`` gold ids -> the doc id newsdesk gives that file (``path_doc_id``)."""
    resolved: list[str] = []
    for gold in case.gold_doc_ids:
        if not gold.startswith(FILE_PREFIX):
            resolved.append(gold)
            continue
        path = gold_path(gold.removeprefix(FILE_PREFIX), corpus_roots)
        if path is None:
            roots = ", ".join(str(r) for r in corpus_roots) or "(no corpus)"
            raise EvalDataError(
                f"case {case.id!r}: field 'gold_doc_ids': {gold!r} is not a file in {roots}"
            )
        resolved.append(path_doc_id(path))
    return replace(case, gold_doc_ids=resolved)


def place_choices(cases: Sequence[Case]) -> list[Case]:
    """Multiple-choice options in a deterministic order that puts the gold answer in every
    position across the suite: the k-th multiple-choice case (file order) has its first
    acceptable answer at position ``k mod len(choices)``; the other options are shuffled with
    a seed taken from the case id. Hand-written options tend to list the right one first, and
    a model (or a scorer) that favours "A" would otherwise look right."""
    out: list[Case] = []
    k = 0
    for case in cases:
        if not case.choices:
            out.append(case)
            continue
        seed = int.from_bytes(hashlib.sha256(case.id.encode()).digest()[:8], "big")
        keys = {" ".join(a.casefold().split()) for a in case.answers}
        gold = next((c for c in case.choices if " ".join(c.casefold().split()) in keys), None)
        others = [c for c in case.choices if c is not gold]
        random.Random(seed).shuffle(others)
        if gold is not None:
            others.insert(k % len(case.choices), gold)
            k += 1
        out.append(replace(case, choices=others))
    return out


# Problems per answer: fewer is better, and a threshold on one is a maximum.
COUNT_METRICS = frozenset(
    {"uncited_factual", "out_of_range", "numbers_missing", "unsupported_delivered",
     "unsupported_delivered_rate"}
)  # fmt: skip


def lower_is_better(metric: str) -> bool:
    """Latencies (timing noise: reported, never a regression in ``compare``)."""
    return metric.endswith(("_ms", "latency", "_ms_p50", "_ms_p95"))


def is_maximum(metric: str) -> bool:
    """Thresholds on latencies and on problem counts are maxima; the others are minima."""
    return lower_is_better(metric) or metric in COUNT_METRICS


@dataclass
class Suite:
    name: str
    path: Path  # the suite.toml file
    kind: Kind
    corpus: list[Path]  # files/folders to ingest, resolved relative to the suite file
    cases_path: Path | None
    settings: dict[str, Any]  # overrides for assistant.settings.Settings
    thresholds: dict[str, float]  # metric -> minimum (maximum: see ``is_maximum``)
    mode: Mode = "auto"
    k: int = 10  # retrieval depth scored
    description: str = ""
    gate: bool = True  # False: thresholds are targets to report, not a CI gate
    date_scope_days: int | None = None
    options: dict[str, Any] = field(default_factory=dict)  # the kind's table, e.g. [realtimeqa]

    def fingerprint(self) -> str:
        """sha256 over the suite file's bytes and the cases file's bytes (for run manifests)."""
        digest = hashlib.sha256(b"suite\0" + self.path.read_bytes())
        if self.cases_path is not None:
            digest.update(b"\0cases\0" + self.cases_path.read_bytes())
        return digest.hexdigest()

    def load_cases(self) -> list[Case]:
        """The suite's cases with ``file:`` gold ids resolved against its corpus."""
        if self.kind == "realtimeqa":
            from evals import realtimeqa

            where, opts = realtimeqa.data_dir(self.options.get("dir")), self.options
            return realtimeqa.load_cases(where, opts.get("weeks"), opts.get("limit"))
        if self.cases_path is None:
            raise EvalDataError(f"{self.path}: field 'cases' is missing")
        resolved: list[Case] = []
        problems: list[str] = []
        for case in load_cases(self.cases_path):
            try:
                resolved.append(resolve_gold(case, self.corpus))
            except EvalDataError as exc:
                problems.append(f"{self.cases_path}: {exc}")
        _raise_if(problems, self.cases_path)
        return place_choices(resolved)

    def failures(self, metrics: Mapping[str, float | None]) -> list[str]:
        """One line per threshold the metrics miss (a metric absent or not finite misses)."""
        out: list[str] = []
        for name, bound in self.thresholds.items():
            value = metrics.get(name)
            if value is None or not math.isfinite(value):
                out.append(f"{name}: no value (threshold {bound:g})")
            elif is_maximum(name) and value > bound:
                out.append(f"{name} = {value:.4g} is above the maximum {bound:g}")
            elif not is_maximum(name) and value < bound:
                out.append(f"{name} = {value:.4g} is below the minimum {bound:g}")
        return out


def _settings_problems(table: dict[str, Any], where: str) -> list[str]:
    problems = []
    for key, value in table.items():
        info = Settings.model_fields.get(key)
        if info is None:
            problems.append(
                f"{where}: {_unknown(key, Settings.model_fields, 'setting', 'settings.')}"
            )
        elif key in FORBIDDEN_SETTINGS:
            problems.append(f"{where}: field 'settings.{key}' cannot be set by a suite")
        else:
            kind = Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
            try:
                TypeAdapter(kind).validate_python(value)
            except ValidationError as exc:
                msg = exc.errors()[0]["msg"]
                problems.append(f"{where}: field 'settings.{key}' = {_show(value)}: {msg}")
    return problems


def _table(data: dict[str, Any], key: str, where: str, problems: list[str]) -> dict[str, Any]:
    value = data.get(key, {})
    if isinstance(value, dict):
        return value
    problems.append(f"{where}: field {key!r} must be a table, got {_show(value)}")
    return {}


def _options(data: dict[str, Any], kind: str, where: str, problems: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for table, spec in OPTION_KEYS.items():
        if table in data and table != kind:
            problems.append(f"{where}: field {table!r} is only for suites of kind = {table!r}")
        for key, value in _table(data, table, where, problems).items() if table == kind else ():
            want = spec.get(key)
            if want is None:
                problems.append(f"{where}: {_unknown(key, spec, 'option', table + '.')}")
            elif not isinstance(value, want) or isinstance(value, bool) or not str(value).strip():
                problems.append(f"{where}: field '{table}.{key}' must be a {want.__name__}")
            elif want is int and value < 1:
                problems.append(f"{where}: field '{table}.{key}' must be at least 1")
            else:
                out[key] = value
    if isinstance(out.get("dir"), str):  # relative to the suite file, like the corpus
        out["dir"] = str((Path(where).parent / Path(out["dir"]).expanduser()).resolve())
    return out


# key -> (default, check, what it must be); "name" defaults to the suite's folder name.
_SCALARS: dict[str, tuple[Any, Any, str]] = {
    "name": (None, lambda v: isinstance(v, str) and v.strip(), "a non-empty string"),
    "description": ("", lambda v: isinstance(v, str), "a string"),
    "kind": ("jsonl", lambda v: v in get_args(Kind), f"one of {', '.join(get_args(Kind))}"),
    "mode": ("auto", lambda v: v in get_args(Mode), f"one of {', '.join(get_args(Mode))}"),
    "k": (10, lambda v: type(v) is int and 1 <= v <= 100, "an integer from 1 to 100"),
    "gate": (True, lambda v: isinstance(v, bool), "true or false"),
    # questions with ``asked_on`` only see articles from this many days before that date
    "date_scope_days": (
        None,
        lambda v: v is None or (type(v) is int and v >= 1),
        "a positive integer",
    ),
}
SUITE_KEYS = {*_SCALARS, "corpus", "cases", "settings", "thresholds", *OPTION_KEYS}


def load_suite(path: Path) -> Suite:
    """Read ``suite.toml`` (or the one in folder ``path``); one error lists every problem."""
    path = Path(path) / SUITE_FILE if Path(path).is_dir() else Path(path)
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise EvalDataError(f"{path}: suite file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalDataError(f"{path}: cannot read suite file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"at line (\d+)", str(exc))
        raise EvalDataError(f"{path}:{line[1] if line else '?'}: invalid TOML: {exc}") from None
    path = path.resolve()
    here, where = path.parent, str(path)
    unknown = [k for k in data if k not in SUITE_KEYS]
    problems = [f"{where}: {_unknown(k, SUITE_KEYS, 'suite key')}" for k in unknown]
    values: dict[str, Any] = {}
    for key, (default, ok, want) in _SCALARS.items():
        values[key] = data.get(key, here.name if key == "name" else default)
        if not ok(values[key]):
            problems.append(f"{where}: field {key!r} must be {want}, got {_show(values[key])}")
            values[key] = here.name if key == "name" else default
    kind = values["kind"]
    raw_corpus = data.get("corpus", [])
    raw_corpus = [raw_corpus] if isinstance(raw_corpus, str) else raw_corpus
    corpus: list[Path] = []
    if not isinstance(raw_corpus, list) or not all(isinstance(c, str) for c in raw_corpus):
        problems.append(f"{where}: field 'corpus' must be a list of paths, got {_show(raw_corpus)}")
    elif kind == "jsonl" and not raw_corpus:
        problems.append(f"{where}: field 'corpus' is missing: a jsonl suite needs articles")
    else:
        corpus = [(here / Path(entry).expanduser()).resolve() for entry in raw_corpus]
        for entry, resolved in zip(raw_corpus, corpus, strict=True):
            if not resolved.exists():
                problems.append(f"{where}: field 'corpus': {entry!r} does not exist ({resolved})")
    raw_cases, cases_path = data.get("cases"), None
    if kind == "realtimeqa" and raw_cases is not None:
        problems.append(f"{where}: field 'cases': a realtimeqa suite has no cases file")
    elif kind == "jsonl" and not isinstance(raw_cases, str):
        problems.append(f"{where}: field 'cases' must name the cases file, got {_show(raw_cases)}")
    elif isinstance(raw_cases, str):
        cases_path = (here / raw_cases).resolve()
        if not cases_path.is_file():
            problems.append(f"{where}: field 'cases': cases file {cases_path} not found")
    settings = _table(data, "settings", where, problems)
    problems += _settings_problems(settings, where)
    thresholds: dict[str, float] = {}
    for key, value in _table(data, "thresholds", where, problems).items():
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            problems.append(f"{where}: field 'thresholds.{key}' must be a number, got {value!r}")
        else:
            thresholds[key] = float(value)
    options = _options(data, kind, where, problems)
    _raise_if(problems, path)
    return Suite(
        values["name"], path, kind, corpus, cases_path, dict(settings), thresholds,
        values["mode"], values["k"], values["description"], values["gate"],
        values["date_scope_days"], options,
    )  # fmt: skip
