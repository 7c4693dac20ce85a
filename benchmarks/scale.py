"""How newsdesk behaves as the archive grows: 40k -> 160k -> 400k chunks.

  python benchmarks/scale.py grow --from HOME --home DIR --to 160000,400000 [--chroma-url URL]
      Copies the chunks of an ingested RealTime QA dev store (``--from``) into DIR's collection
      under new ids (``<doc>~r<k>``: the corpus re-ingested as other documents), with their
      stored vectors (embedding throughput is measured by ``ingest``, not here), until each
      target size. Per step: Chroma write rate, the lexical index's update (add + commit)
      time, sizes on disk, this process's peak RSS.
  python benchmarks/scale.py ingest --home DIR [--articles 30] [--chroma-url URL]
      A child process ingests N RealTime QA articles under new ids into DIR (the real
      pipeline: chunk, embed, Chroma, lexical index); its wall time, chunks/s and peak RSS.
  python benchmarks/scale.py serve --home DIR [--clients 1,4,16] [--questions 40]
      Starts ``newsdesk serve`` over DIR and sends RealTime QA dev questions from 1, 4 and 16
      concurrent clients to /v1/search and /v1/answer (extractive), other questions in each
      round (answers are cached by passage): p50/p95 latency and requests/s; ratios to the
      1-client round of the same invocation.

Everything prints one JSON line per measurement (append them to a file with ``| tee -a``).
The RealTime QA files are read from ../shared/benchmarks/realtimeqa (never copied).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
RTQA = Path(os.environ.get("NEWSDESK_REALTIMEQA_DIR", ROOT.parent / "shared/benchmarks/realtimeqa"))


def _emit(**row: Any) -> None:
    print(json.dumps(row), flush=True)


def _size_mb(path: Path) -> float:
    if not path.exists():
        return 0.0
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def _peak_rss_mb(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def _settings(home: Path, chroma_url: str | None) -> Any:
    from assistant.settings import load_settings

    return load_settings(home=home, chroma_url=chroma_url, extractive=True)


# -- grow ------------------------------------------------------------------------------------
def grow(args: argparse.Namespace) -> None:
    from assistant.index.lexical_store import LexicalStore
    from assistant.index.locks import writer_lock
    from assistant.index.store import GENERATION, Store
    from assistant.models.embeddings import embedder_id

    source_settings = _settings(Path(args.source), None)
    source = Store(source_settings)
    settings = _settings(Path(args.home), args.chroma_url)
    target = Store(settings, source.embedder)
    target.set_manifest(embedder=embedder_id(settings), chunker=source.manifest().get("chunker"))
    lexical_home = LexicalStore.beside(settings, target)
    targets = sorted(int(t) for t in args.to.split(","))
    have = target.count()
    round_ = int(target.manifest().get("scale_round", 0))
    with writer_lock(settings, target.name), lexical_home.writer() as lexical:
        for goal in targets:
            if have >= goal:
                continue
            started, chroma_s, lexical_s, added = time.perf_counter(), 0.0, 0.0, 0
            while have < goal:
                round_ += 1
                page: list[Any] = []
                for chunk, vector in source.iter_chunks(include_vectors=True):  # type: ignore[misc]
                    page.append((chunk, vector))
                    if len(page) == 1000 or have + len(page) >= goal:
                        c, ls = _copy(page, round_, target, lexical)
                        chroma_s, lexical_s = chroma_s + c, lexical_s + ls
                        have, added, page = have + len(page), added + len(page), []
                        if have >= goal:
                            break
                if page:
                    c, ls = _copy(page, round_, target, lexical)
                    chroma_s, lexical_s = chroma_s + c, lexical_s + ls
                    have, added = have + len(page), added + len(page)
            t0 = time.perf_counter()
            generation = target.generation() + 1
            lexical.commit(generation)
            commit_s = time.perf_counter() - t0
            target.set_manifest(**{GENERATION: generation, "scale_round": round_})
            _emit(
                step="grow",
                chunks=target.count(),
                added=added,
                seconds=round(time.perf_counter() - started, 1),
                chroma_chunks_per_s=round(added / chroma_s, 1),
                lexical_add_s=round(lexical_s, 1),
                lexical_commit_s=round(commit_s, 2),
                lexical_mb=round(_size_mb(lexical_home.path), 1),
                chroma_mb=round(_size_mb(settings.chroma_path), 1) if not args.chroma_url else None,
                peak_rss_mb=round(_peak_rss_mb()),
            )
        _copy_stories(source, target, source_settings, settings, round_)
        target.set_manifest(writing=None)  # (a run stopped midway leaves it set)


def _copy_stories(
    source: Any, target: Any, source_settings: Any, settings: Any, rounds: int
) -> None:
    """The story sketches of every copy (a real archive has them; without them the next ingest
    would group the whole archive once, reading all its text)."""
    from assistant.index.stories import StoryIndex

    src = StoryIndex.beside(source_settings, source).load()
    out = StoryIndex.beside(settings, target)
    for k in range(1, rounds + 1):
        for doc, story in src.story.items():
            out._insert(f"{doc}~r{k}", f"{story}~r{k}", src.size[doc], src.sketch[doc])
    out.save()


def _copy(page: list[Any], round_: int, target: Any, lexical: Any) -> tuple[float, float]:
    import numpy as np

    ids, texts, metas = [], [], []
    for chunk, _ in page:
        meta = dict(chunk.metadata)
        doc = f"{meta['doc_id']}~r{round_}"
        meta["doc_id"] = doc
        if meta.get("story_id"):
            meta["story_id"] = f"{meta['story_id']}~r{round_}"
        ids.append(f"{doc}:{meta['chunk_index']}")
        texts.append(chunk.text)
        metas.append(meta)
    vectors = np.stack([v for _, v in page])
    t0 = time.perf_counter()
    target.upsert(ids, texts, metas, vectors)
    t1 = time.perf_counter()
    lexical.add(ids, texts, metas, vectors)
    return t1 - t0, time.perf_counter() - t1


# -- ingest ----------------------------------------------------------------------------------
CHILD = """
import json, resource, sys, time
from assistant.settings import load_settings
from ingest.pipeline import ingest_paths
t = time.perf_counter()
report = ingest_paths([sys.argv[1]], load_settings(extractive=True))
print(json.dumps({"chunks": report.chunks, "added": report.added,
                  "seconds": time.perf_counter() - t,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def ingest(args: argparse.Namespace) -> None:
    with gzip.open(RTQA / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for _, line in zip(range(args.articles), fh, strict=False)]
    stamp = int(time.time())
    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "new.jsonl"
        for r in rows:
            r["doc_id"] = f"{r['doc_id']}-new{stamp}"
        sample.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        env = {**os.environ, "NEWSDESK_HOME": str(args.home)}
        if args.chroma_url:
            env["NEWSDESK_CHROMA_URL"] = args.chroma_url
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(sample)], env=env, cwd=ROOT,
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    _emit(
        step="ingest",
        articles=len(rows),
        chunks=result["chunks"],
        seconds=round(result["seconds"], 1),
        chunks_per_s=round(result["chunks"] / result["seconds"], 1),
        peak_rss_mb=round(result["peak_rss_mb"]),
        store="server" if args.chroma_url else "embedded",
    )


# -- serve -----------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def serve(args: argparse.Namespace) -> None:
    import httpx

    lines = (RTQA / "questions.dev.jsonl").read_text(encoding="utf-8").splitlines()
    every = [json.loads(x)["question"] for x in lines if x.strip()]
    rounds = [int(c) for c in args.clients.split(",")]
    # each round its own questions: answers are cached by passage, so a question asked in an
    # earlier round would be answered from the cache
    need = 2 * len(rounds) * args.questions + 4
    if need > len(every):
        sys.exit(f"{need} questions needed, {len(every)} in the dev split")
    slices = iter(every[i : i + args.questions] for i in range(4, need, args.questions))
    port = _free_port()
    env = {
        **os.environ,
        "NEWSDESK_HOME": str(args.home),
        "NEWSDESK_EXTRACTIVE": "1",
        "NEWSDESK_SERVE_CLIENT_CONCURRENCY": "64",
    }  # one benchmark machine, many clients
    if args.chroma_url:
        env["NEWSDESK_CHROMA_URL"] = args.chroma_url
    server = subprocess.Popen(
        [sys.executable, "-m", "assistant.surfaces.cli", "serve", "--port", str(port)],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit("newsdesk serve did not start")
            time.sleep(0.5)
        with httpx.Client(base_url=base, timeout=300) as client:
            for q in every[:4]:  # warm up: first model loads, first HNSW reads
                client.post("/v1/answer", json={"question": q})
            for kind in ("search", "answer"):
                base_rate = None
                for n in rounds:
                    questions = next(slices)
                    rate, p50, p95 = _load(client, kind, questions, n)
                    base_rate = base_rate or rate
                    _emit(step="serve", kind=kind, clients=n, requests=len(questions),
                          per_s=round(rate, 2), p50_ms=round(p50), p95_ms=round(p95),
                          ratio_to_1_client=round(rate / base_rate, 2))  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)


def _load(client: Any, kind: str, questions: list[str], clients: int) -> tuple[float, float, float]:
    def one(q: str) -> float:
        t = time.perf_counter()
        if kind == "search":
            r = client.get("/v1/search", params={"q": q, "k": 6})
        else:
            r = client.post("/v1/answer", json={"question": q})
        r.raise_for_status()
        return (time.perf_counter() - t) * 1e3

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        times = list(pool.map(one, questions))
    rate = len(questions) / (time.perf_counter() - started)
    return rate, statistics.median(times), _pct(times, 0.95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("grow")
    p.add_argument("--from", dest="source", required=True)
    p.add_argument("--home", required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--chroma-url")
    p = sub.add_parser("ingest")
    p.add_argument("--home", required=True)
    p.add_argument("--articles", type=int, default=30)
    p.add_argument("--chroma-url")
    p = sub.add_parser("serve")
    p.add_argument("--home", required=True)
    p.add_argument("--clients", default="1,4,16")
    p.add_argument("--questions", type=int, default=40)
    p.add_argument("--chroma-url")
    args = parser.parse_args()
    {"grow": grow, "ingest": ingest, "serve": serve}[args.cmd](args)


if __name__ == "__main__":
    main()
