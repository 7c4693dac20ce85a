"""Benchmarks for newsdesk. Results and the commands that produced them: docs/benchmarks.md.

  python benchmarks/bench.py ingest [--articles 200] [--reps 3]
      Ingest throughput (chunks/s, articles/s, peak RSS) of ``newsdesk ingest`` against the plain
      LangChain recipe (RecursiveCharacterTextSplitter + Chroma.from_documents) on the same model,
      each run in its own subprocess, alternating, in one run of this script.
  python benchmarks/bench.py embed [--texts 400] [--reps 2]
      The embedder alone on newsdesk's chunks of RealTime QA articles: the plain way of running
      the model, and MiniLMEmbeddings with the shipped or the fused graph at two batch budgets,
      each configuration in its own subprocess (chunks/s, peak RSS).
  python benchmarks/bench.py query --home DIR [--questions 100]
      Latency p50/p95 of ``search`` and extractive ``ask`` over a home that holds the RealTime QA
      dev corpus, next to plain dense ``Chroma.similarity_search`` in the same process.

The RealTime QA files are read from ../shared/benchmarks/realtimeqa (never copied).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RTQA = ROOT.parent / "shared" / "benchmarks" / "realtimeqa"


class PlainOnnxEmbeddings:
    """The straightforward way to run the same int8 MiniLM: what Chroma's own default ONNX
    function does (fixed batches of 32 in input order, padded to the batch's longest text,
    onnxruntime's default session), pointed at the bundled model so it works offline."""

    def __init__(self) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from assistant.models.embeddings import minilm_files

        model, tok = minilm_files()
        self.tokenizer = Tokenizer.from_file(str(tok))
        self.tokenizer.enable_truncation(256)
        self.tokenizer.enable_padding()
        self.session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        out = []
        for i in range(0, len(texts), 32):
            enc = self.tokenizer.encode_batch(texts[i : i + 32])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            (hidden,) = self.session.run(
                None,
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
            )
            m = mask[:, :, None].astype(np.float32)
            pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
            out.extend((pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).tolist())
        return out

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def _sample(n: int, dest: Path) -> Path:
    corpus = RTQA / "corpus.jsonl.gz"
    if not corpus.is_file():
        sys.exit(f"benchmark corpus not found at {corpus}")
    with gzip.open(corpus, "rt", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    random.Random(7).shuffle(rows)
    path = dest / "sample.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows[:n]), encoding="utf-8")
    return path


def _run_newsdesk(sample: Path, home: Path) -> dict[str, Any]:
    from assistant.settings import load_settings
    from ingest.pipeline import ingest_paths

    start = time.perf_counter()
    report = ingest_paths([str(sample)], load_settings(home=home))
    return {"chunks": report.chunks, "seconds": time.perf_counter() - start}


def _run_plain(sample: Path, home: Path, embedder: str) -> dict[str, Any]:
    from assistant.offline import prepare

    prepare()
    import chromadb
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from assistant.models.embeddings import MiniLMEmbeddings

    start = time.perf_counter()
    rows = [json.loads(line) for line in sample.read_text(encoding="utf-8").splitlines()]
    docs = [Document(r["text"], metadata={"doc_id": r["doc_id"]}) for r in rows]
    splitter = RecursiveCharacterTextSplitter.from_tiktoken_encoder(
        encoding_name="cl100k_base", chunk_size=230, chunk_overlap=30
    )
    chunks = splitter.split_documents(docs)
    emb = PlainOnnxEmbeddings() if embedder == "plain" else MiniLMEmbeddings()
    client = chromadb.PersistentClient(
        path=str(home), settings=chromadb.config.Settings(anonymized_telemetry=False)
    )
    Chroma.from_documents(chunks, emb, client=client, collection_name="plain")  # type: ignore[arg-type]
    return {"chunks": len(chunks), "seconds": time.perf_counter() - start}


def _child(kind: str, sample: Path) -> dict[str, Any]:
    """Run one ingest in a fresh process; returns its numbers and peak RSS."""
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
        out = subprocess.run(
            [sys.executable, __file__, "child", kind, str(sample), home],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])


def bench_ingest(args: argparse.Namespace) -> None:
    kinds = ["newsdesk", "plain", "plain-ourembedder"]
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        sample = _sample(args.articles, Path(tmp))
        for rep in range(args.reps):
            order = kinds if rep % 2 == 0 else kinds[::-1]
            for kind in order:
                r = _child(kind, sample)
                r["chunks_per_s"] = r["chunks"] / r["seconds"]
                r["articles_per_s"] = args.articles / r["seconds"]
                results[kind].append(r)
                print(f"rep {rep} {kind:18} {json.dumps({k: round(v, 2) for k, v in r.items()})}")
    print(f"\n{args.articles} articles, {args.reps} reps, medians:")
    base = results["plain"]
    for kind in kinds:
        rs = results[kind]
        cps = statistics.median(r["chunks_per_s"] for r in rs)
        aps = statistics.median(r["articles_per_s"] for r in rs)
        rss = max(r["rss_mb"] for r in rs)
        ratio = statistics.median(
            r["chunks_per_s"] / b["chunks_per_s"] for r, b in zip(rs, base, strict=True)
        )
        print(
            f"{kind:18} chunks={rs[0]['chunks']:5d} chunks/s={cps:6.1f} articles/s={aps:5.2f} "
            f"peak_rss_mb={rss:6.0f} ratio_vs_plain(chunks/s, paired median)={ratio:.2f}"
        )


EMBED_CONFIGS = {  # name: (fused graph, batch budget); "plain" is PlainOnnxEmbeddings
    "plain": (False, 0),
    "shipped-graph-b8": (False, 8),
    "shipped-graph-b2": (False, 2),
    "fused-graph-b8": (True, 8),
    "fused-graph-b2": (True, 2),
}


def _embed_child(config: str, texts_file: Path) -> dict[str, Any]:
    from assistant.models.embeddings import MiniLMEmbeddings

    texts = json.loads(texts_file.read_text(encoding="utf-8"))
    fused, budget = EMBED_CONFIGS[config]
    emb: Any = PlainOnnxEmbeddings() if config == "plain" else MiniLMEmbeddings(budget, fused=fused)
    emb.embed_documents(texts[:16])  # session created, first run done
    if config != "plain" and emb.graph != ("fused" if fused else "shipped"):
        sys.exit(f"{config}: the embedder runs the {emb.graph} graph")
    start = time.perf_counter()
    emb.embed_documents(texts)
    return {"chunks_per_s": len(texts) / (time.perf_counter() - start)}


def bench_embed(args: argparse.Namespace) -> None:
    from ingest.chunking import chunk_text
    from ingest.pipeline import embed_text

    with tempfile.TemporaryDirectory() as tmp:
        sample = _sample(args.texts // 5, Path(tmp))
        texts: list[str] = []
        for line in sample.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            texts += [
                embed_text(row.get("title", ""), c.text, c.tokens) for c in chunk_text(row["text"])
            ]
        texts = texts[: args.texts]
        texts_file = Path(tmp) / "texts.json"
        texts_file.write_text(json.dumps(texts), encoding="utf-8")
        results: dict[str, list[dict[str, Any]]] = {c: [] for c in EMBED_CONFIGS}
        for rep in range(args.reps):
            configs = list(EMBED_CONFIGS) if rep % 2 == 0 else list(EMBED_CONFIGS)[::-1]
            for config in configs:
                out = subprocess.run(
                    [sys.executable, __file__, "child-embed", config, str(texts_file)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                r = json.loads(out.stdout.strip().splitlines()[-1])
                results[config].append(r)
                print(f"rep {rep} {config:18} {json.dumps({k: round(v, 1) for k, v in r.items()})}")
    print(f"\n{len(texts)} chunks, {args.reps} reps, medians:")
    base = statistics.median(r["chunks_per_s"] for r in results["plain"])
    for config, rs in results.items():
        cps = statistics.median(r["chunks_per_s"] for r in rs)
        rss = max(r["rss_mb"] for r in rs)
        print(f"{config:18} chunks/s={cps:6.1f} x plain={cps / base:4.2f} peak_rss_mb={rss:5.0f}")


def _percentiles(samples: list[float]) -> str:
    s = sorted(samples)
    p95 = s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]
    return f"p50={statistics.median(s):7.1f} ms  p95={p95:7.1f} ms"


def bench_query(args: argparse.Namespace) -> None:
    from assistant.desk import Desk
    from assistant.settings import load_settings

    questions = [
        json.loads(line)["question"]
        for line in (RTQA / "questions.dev.jsonl").read_text(encoding="utf-8").splitlines()
    ][: args.questions]
    assistant = Desk(load_settings(home=Path(args.home), extractive=True))
    assistant.search("warm up the model and the BM25 index")
    timings: dict[str, list[float]] = {"dense-only (plain Chroma)": [], "search": [], "ask": []}
    collection = assistant.store.collection
    embedder = assistant.store.embedder
    for q in questions:
        t = time.perf_counter()
        collection.query(query_embeddings=[embedder.embed_query(q)], n_results=6)
        timings["dense-only (plain Chroma)"].append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        assistant.search(q)
        timings["search"].append((time.perf_counter() - t) * 1e3)
        t = time.perf_counter()
        assistant.answer(q)
        timings["ask"].append((time.perf_counter() - t) * 1e3)
    print(f"{len(questions)} questions, {assistant.store.count()} chunks in {args.home}")
    for name, samples in timings.items():
        print(f"{name:28} {_percentiles(samples)}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ingest")
    p.add_argument("--articles", type=int, default=200)
    p.add_argument("--reps", type=int, default=3)
    p = sub.add_parser("child")  # one measured run, in its own process
    p.add_argument("kind")
    p.add_argument("sample", type=Path)
    p.add_argument("home", type=Path)
    p = sub.add_parser("embed")
    p.add_argument("--texts", type=int, default=400)
    p.add_argument("--reps", type=int, default=2)
    p = sub.add_parser("child-embed")  # one measured embedder configuration
    p.add_argument("config", choices=list(EMBED_CONFIGS))
    p.add_argument("texts_file", type=Path)
    p = sub.add_parser("query")
    p.add_argument("--home", required=True)
    p.add_argument("--questions", type=int, default=100)
    args = parser.parse_args()
    if args.cmd == "child":
        if args.kind == "newsdesk":
            result = _run_newsdesk(args.sample, args.home)
        else:
            result = _run_plain(args.sample, args.home, args.kind)
        result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
    elif args.cmd == "child-embed":
        result = _embed_child(args.config, args.texts_file)
        result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
    elif args.cmd == "embed":
        bench_embed(args)
    elif args.cmd == "ingest":
        bench_ingest(args)
    else:
        bench_query(args)


if __name__ == "__main__":
    main()
