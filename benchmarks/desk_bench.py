"""Benchmarks of one long-lived ``Desk``: threads, memory over time, freshness across processes.

  python benchmarks/desk_bench.py throughput --home DIR [--questions 200] [--threads 1,4,16]
      One shared extractive Desk, warmed up on the same questions, answers N RealTime QA dev
      questions from a ThreadPoolExecutor per thread count: answers/s, p50/p95 latency, and
      answers/s as a ratio to the 1-thread run of the same script run. --cold empties the
      sentence-vector cache before each round (every question then embeds its passages).
  python benchmarks/desk_bench.py memory --home DIR [--questions 1000] [--every 100]
      One Desk answers N questions (the dev questions, cycled) in this process; RSS (VmRSS)
      every 100 questions: start/end/max and the slope over the last 500 (MB per 100 questions).
  python benchmarks/desk_bench.py freshness --home DIR [--reps 5]
      A reader Desk here; a child process ingests one new small article into (a copy of) the
      home. Per rep: the child's wall time, the time from the child's exit until the reader's
      next search returns the article, and the latency of that first call after the generation
      changed next to the median of ordinary calls. Medians over the reps.

The RealTime QA files are read from ../shared/benchmarks/realtimeqa (never copied).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if TYPE_CHECKING:
    from assistant.desk import Desk

ROOT = Path(__file__).resolve().parent.parent
RTQA = ROOT.parent / "shared" / "benchmarks" / "realtimeqa"


# -- helpers ---------------------------------------------------------------------------------
def _questions() -> list[str]:
    path = RTQA / "questions.dev.jsonl"
    if not path.is_file():
        sys.exit(f"benchmark questions not found at {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def _desk(home: Path) -> Desk:
    from assistant.desk import Desk
    from assistant.settings import load_settings

    return Desk(load_settings(home=home, extractive=True))


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _p(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def _ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def _slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


def _header(desk: Desk, home: Path) -> None:
    stats = desk.stats()
    print(
        f"home {home}: {stats.documents} articles, {stats.chunks} chunks, "
        f"generation {stats.generation}; {os.cpu_count()} CPUs; RSS {_rss_mb():.0f} MB"
    )


# -- throughput ------------------------------------------------------------------------------
def _round(desk: Desk, questions: list[str], threads: int) -> dict[str, Any]:
    errors: list[str] = []

    def one(q: str) -> float:
        start = time.perf_counter()
        try:
            desk.answer(q)
        except Exception as exc:  # counted, not fatal: the run says how many failed
            errors.append(f"{type(exc).__name__}: {exc}")
        return (time.perf_counter() - start) * 1e3

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        latencies = list(pool.map(one, questions))
    wall = time.perf_counter() - start
    return {
        "threads": threads,
        "answers_per_s": len(questions) / wall,
        "p50_ms": statistics.median(latencies),
        "p95_ms": _p(latencies, 0.95),
        "wall_s": wall,
        "errors": errors,
    }


def _forget_sentences(desk: Desk) -> None:
    """Empty the sentence-vector cache, so a round answers as if every question were new."""
    cache = desk.checker.sentences
    with cache._lock:
        cache._cache.clear()


def bench_throughput(args: argparse.Namespace) -> None:
    questions = _questions()[: args.questions]
    counts = [int(t) for t in args.threads.split(",")]
    desk = _desk(args.home)
    _header(desk, args.home)
    warm = time.perf_counter()
    for q in questions[: args.warmup] if args.warmup >= 0 else questions:
        desk.answer(q)
    print(f"warm-up: {time.perf_counter() - warm:.1f}s, RSS {_rss_mb():.0f} MB")
    results: dict[int, list[dict[str, Any]]] = {t: [] for t in counts}
    for rnd in range(args.rounds):
        order = counts if rnd % 2 == 0 else counts[::-1]
        for t in order:
            if args.cold:
                _forget_sentences(desk)
            r = _round(desk, questions, t)
            results[t].append(r)
            print(
                f"round {rnd} threads={t:3d} answers/s={r['answers_per_s']:6.2f} "
                f"p50={r['p50_ms']:7.1f} ms p95={r['p95_ms']:7.1f} ms wall={r['wall_s']:6.1f}s "
                f"errors={len(r['errors'])}"
            )
            for e in r["errors"][:3]:
                print(f"  error: {e}")
    base = statistics.median(r["answers_per_s"] for r in results[counts[0]])
    cache = "cold (emptied before each round)" if args.cold else "warm"
    print(
        f"\n{len(questions)} questions x {args.rounds} round(s), sentence cache {cache}, "
        f"medians; ratio vs {counts[0]}:"
    )
    print("| threads | answers/s | ratio | p50 ms | p95 ms | errors |")
    print("|---:|---:|---:|---:|---:|---:|")
    for t, rs in results.items():
        aps = statistics.median(r["answers_per_s"] for r in rs)
        p50 = statistics.median(r["p50_ms"] for r in rs)
        p95 = statistics.median(r["p95_ms"] for r in rs)
        errs = sum(len(r["errors"]) for r in rs)
        print(f"| {t} | {aps:.2f} | {aps / base:.2f} | {p50:.0f} | {p95:.0f} | {errs} |")
    print(f"RSS at end {_rss_mb():.0f} MB")


# -- memory ----------------------------------------------------------------------------------
def bench_memory(args: argparse.Namespace) -> None:
    pool = _questions()
    desk = _desk(args.home)
    _header(desk, args.home)
    desk.answer(pool[0])  # model session and BM25 snapshot loaded
    samples: list[tuple[int, float, int]] = [(0, _rss_mb(), len(desk.checker.sentences))]
    print("| answered | RSS MB | sentence-cache passages | s since start |")
    print("|---:|---:|---:|---:|")
    print(f"| 0 | {samples[0][1]:.0f} | {samples[0][2]} | 0 |")
    start = time.perf_counter()
    for i in range(args.questions):
        desk.answer(pool[i % len(pool)])
        if (i + 1) % args.every == 0:
            samples.append((i + 1, _rss_mb(), len(desk.checker.sentences)))
            elapsed = time.perf_counter() - start
            print(f"| {i + 1} | {samples[-1][1]:.0f} | {samples[-1][2]} | {elapsed:.0f} |")
    rss = [s[1] for s in samples]
    tail = [s for s in samples if s[0] >= args.questions - 500]
    slope = _slope([s[0] / 100 for s in tail], [s[1] for s in tail])
    print(
        f"\n{args.questions} answers ({len(pool)} distinct questions, cycled): "
        f"RSS start {rss[0]:.0f} MB, end {rss[-1]:.0f} MB, max {max(rss):.0f} MB; "
        f"slope over answers {tail[0][0]}..{tail[-1][0]}: {slope:+.2f} MB per 100 questions"
    )


# -- freshness -------------------------------------------------------------------------------
def _article(folder: Path, rep: int) -> tuple[str, str]:
    """One new small article; returns its doc_id and a question only it answers."""
    token = f"Quorvex{uuid.uuid4().hex[:8]}"
    doc_id = f"desk-bench-{token.lower()}"
    text = (
        f"The harbour council of {token} voted on Tuesday to close the old ferry pier. "
        f"Mayor Ilse Brandt said the {token} pier had been unsafe for three winters and that "
        f"a new crossing would open in the spring. Residents of {token} protested outside the "
        "town hall, saying the ferry was their only link to the mainland."
    )
    row = {
        "id": doc_id,
        "title": f"{token} council closes its ferry pier",
        "text": text,
        "url": f"https://example.org/{doc_id}",
        "source": "desk-bench",
        "published_at": "2022-11-20",
    }
    (folder / f"article-{rep}.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    return doc_id, f"Why did the {token} council close the ferry pier?"


def _ordinary(desk: Desk, questions: list[str], call: str) -> list[float]:
    fn = desk.search if call == "search" else desk.answer
    return [_ms(lambda q=q: fn(q)) for q in questions]


def _ingest_child(home: Path, path: Path) -> tuple[float, dict[str, Any], float]:
    """Ingest ``path`` into ``home`` in a fresh process: (wall s, its report, exit time)."""
    env = {**os.environ, "NEWSDESK_HOME": str(home), "ANONYMIZED_TELEMETRY": "False"}
    cmd = [sys.executable, "-m", "assistant.surfaces.cli", "ingest", "--json", str(path)]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    exited = time.perf_counter()
    if out.returncode != 0:
        sys.exit(f"child ingest failed ({out.returncode}): {out.stderr[-2000:]}")
    return exited - start, json.loads(out.stdout.strip().splitlines()[-1]), exited


def _fresh_rep(
    desk: Desk, home: Path, articles: Path, n: int, call: str, sample: list[str], give_up: float
) -> dict[str, Any]:
    """One new article ingested by a child; the reader's first call after it is ``call``."""
    ordinary = _ordinary(desk, sample, call)
    doc_id, question = _article(articles, n)
    gen_before = desk.index.generation
    wall, report, exited = _ingest_child(home, articles / f"article-{n}.jsonl")
    first_ms = found_s = float("nan")
    calls = 0
    while time.perf_counter() - exited < give_up:
        store_gen = desk.store.generation()  # the reader checks the generation before a call
        start = time.perf_counter()
        if call == "answer" and calls == 0:
            passages = desk.answer(question).passages
        else:
            passages = desk.search(question)
        done = time.perf_counter()
        calls += 1
        if calls == 1 and store_gen != gen_before:
            first_ms = (done - start) * 1e3
        if any(p.doc_id == doc_id for p in passages):
            found_s = done - exited
            break
        time.sleep(0.01)
    return {
        "call": call,
        "child_wall_s": wall,
        "child_ingest_s": float(report.get("seconds", float("nan"))),
        "visible_after_exit_ms": found_s * 1e3,
        "calls": calls,
        "first_call_ms": first_ms,
        "ordinary_median_ms": statistics.median(ordinary),
        "generation": f"{gen_before}->{desk.index.generation}",
        "refreshes": desk.index.refreshes,
    }


def bench_freshness(args: argparse.Namespace) -> None:
    questions = _questions()
    with tempfile.TemporaryDirectory(prefix="desk-bench-") as tmp:
        home = args.home
        if not args.in_place:  # keep the benchmark home as it was
            home = Path(tmp) / "home"
            shutil.copytree(args.home, home)
        articles = Path(tmp) / "articles"
        articles.mkdir()
        desk = _desk(home)
        _header(desk, home)
        for q in questions[:5]:
            desk.answer(q)
        rows: list[dict[str, Any]] = []
        calls_per_rep = ("search", "answer") if args.both else ("search",)
        n = 0
        for rep in range(args.reps):
            for call in calls_per_rep:
                sample = questions[5 + n * args.ordinary : 5 + (n + 1) * args.ordinary]
                row = _fresh_rep(desk, home, articles, n, call, sample, args.give_up)
                row["rep"] = rep
                rows.append(row)
                n += 1
                print(
                    json.dumps(
                        {k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()}
                    )
                )
        desk.close()
    print(f"\n{args.reps} reps, medians:")
    print(
        "| first call | reps | child wall s | ingest s (its report) | visible after exit ms |"
        " first call ms | ordinary median ms | ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for call in ("search", "answer"):
        rs = [r for r in rows if r["call"] == call]
        if not rs:
            continue

        def med(key: str, rs: list[dict[str, Any]] = rs) -> float:
            return statistics.median(r[key] for r in rs)

        ratio = statistics.median(r["first_call_ms"] / r["ordinary_median_ms"] for r in rs)
        print(
            f"| {call} | {len(rs)} | {med('child_wall_s'):.1f} | {med('child_ingest_s'):.1f} | "
            f"{med('visible_after_exit_ms'):.0f} | {med('first_call_ms'):.0f} | "
            f"{med('ordinary_median_ms'):.0f} | {ratio:.1f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("throughput")
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--questions", type=int, default=200)
    p.add_argument("--threads", default="1,4,16", help="comma-separated; the first is the base")
    p.add_argument("--rounds", type=int, default=1, help="rounds over all thread counts (ABBA)")
    p.add_argument("--warmup", type=int, default=-1, help="questions to warm up on; -1: all N")
    p.add_argument("--cold", action="store_true", help="empty the sentence cache before rounds")
    p = sub.add_parser("memory")
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--questions", type=int, default=1000)
    p.add_argument("--every", type=int, default=100)
    p = sub.add_parser("freshness")
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--ordinary", type=int, default=10, help="ordinary calls timed per rep")
    p.add_argument("--both", action="store_true", help="per rep, also an answer-first ingest")
    p.add_argument("--in-place", action="store_true", help="ingest into HOME, not a copy")
    p.add_argument("--give-up", type=float, default=60.0, help="seconds to wait per rep")
    args = parser.parse_args()
    {"throughput": bench_throughput, "memory": bench_memory, "freshness": bench_freshness}[
        args.cmd
    ](args)


if __name__ == "__main__":
    main()
