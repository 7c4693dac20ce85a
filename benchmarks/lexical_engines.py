"""BM25 engines compared on RealTime QA dev: bm25s (newsdesk before 0.14), SQLite FTS5 bm25(),
tantivy (now).

  python benchmarks/lexical_engines.py --home DIR [--copies 1]

Reads every chunk of an ingested RealTime QA dev store (``--home``) once, indexes the same
stemmed terms in each engine (k1 1.2, b 0.75), and scores the BM25 side alone on the questions
that have a gold article: document-level hit@5 and MRR@10 (chunks ranked, first hit per article),
with the question alone and with its answer options appended (as the eval suite queries). Also:
index build time, size on disk, query latency p50/p95 (no filter, and with a date filter).
``--copies N`` indexes the corpus N times under other ids (latency at N x the size; quality is
only reported for N = 1).

The RealTime QA files are read from ../shared/benchmarks/realtimeqa (never copied).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
RTQA = Path(os.environ.get("NEWSDESK_REALTIMEQA_DIR", ROOT.parent / "shared/benchmarks/realtimeqa"))
FILTER_TS = 1_660_000_000  # 2022-08-08: about half of the corpus is newer


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


class Bm25s:
    name = "bm25s"

    def __init__(self, tokens: list[list[str]], folder: Path) -> None:
        from assistant.index.lexical import _bm25s

        bm25s = _bm25s()
        vocab: dict[str, int] = {}
        ids = [[vocab.setdefault(t, len(vocab)) for t in doc] for doc in tokens]
        self.vocab = vocab
        self.retriever = bm25s.BM25(k1=1.2, b=0.75)
        self.retriever.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab),
                             show_progress=False)  # fmt: skip
        self.retriever.save(str(folder / "bm25s"))
        self.path = folder / "bm25s"

    def search(self, words: list[str], n: int, ts: Any | None) -> list[int]:
        import numpy as np

        from assistant.index.lexical import _bm25s

        bm25s = _bm25s()
        known = [self.vocab[w] for w in words if w in self.vocab]
        if not known:
            return []
        query = bm25s.tokenization.Tokenized(ids=[known], vocab=self.vocab)
        mask = None if ts is None else (ts >= FILTER_TS).astype(np.float32)
        docs, scores = self.retriever.retrieve(query, k=n, show_progress=False, n_threads=1,
                                               weight_mask=mask)  # fmt: skip
        return [int(d) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]


class Fts5:
    name = "sqlite-fts5"

    def __init__(self, tokens: list[list[str]], stamps: list[int], folder: Path) -> None:
        self.path = folder / "fts.db"
        self.db = sqlite3.connect(self.path, check_same_thread=False)
        self.db.execute("create table meta(id integer primary key, ts int)")
        self.db.execute("create virtual table fts using fts5(terms, tokenize='ascii')")
        self.db.executemany("insert into meta values (?, ?)", enumerate(stamps))
        self.db.executemany(
            "insert into fts(rowid, terms) values (?, ?)",
            ((i, " ".join(t)) for i, t in enumerate(tokens)),
        )
        self.db.commit()

    def search(self, words: list[str], n: int, ts: Any | None) -> list[int]:
        match = " OR ".join(f'"{w}"' for w in words)
        if ts is None:
            sql = "select rowid from fts where fts match ? order by rank limit ?"
            rows = self.db.execute(sql, (match, n))
        else:
            sql = ("select f.rowid from fts f join meta m on m.id = f.rowid "
                   "where fts match ? and m.ts >= ? order by rank limit ?")  # fmt: skip
            rows = self.db.execute(sql, (match, FILTER_TS, n))
        return [r[0] for r in rows]


class Tantivy:
    name = "tantivy"

    def __init__(self, tokens: list[list[str]], stamps: list[int], folder: Path) -> None:
        import tantivy

        self.tv = tantivy
        b = tantivy.SchemaBuilder()
        b.add_integer_field("row", stored=True)
        b.add_text_field("terms", tokenizer_name="whitespace", index_option="freq")
        b.add_integer_field("ts", indexed=True, fast=True)
        self.schema = b.build()
        self.path = folder / "tantivy"
        self.path.mkdir()
        index = tantivy.Index(self.schema, path=str(self.path))
        writer = index.writer(heap_size=64_000_000, num_threads=1)
        for i, (t, ts) in enumerate(zip(tokens, stamps, strict=True)):
            writer.add_document(tantivy.Document(row=i, terms=" ".join(t), ts=ts))
        writer.commit()
        writer.wait_merging_threads()
        index.reload()
        self.searcher = index.searcher()

    def search(self, words: list[str], n: int, ts: Any | None) -> list[int]:
        tv, sc = self.tv, self.schema
        query = tv.Query.boolean_query(
            [(tv.Occur.Should, tv.Query.term_query(sc, "terms", w, index_option="freq"))
             for w in words]
        )  # fmt: skip
        if ts is not None:
            where = tv.Query.range_query(sc, "ts", tv.FieldType.Integer, FILTER_TS, None)
            query = tv.Query.boolean_query(
                [(tv.Occur.Must, query), (tv.Occur.Must, tv.Query.const_score_query(where, 0.0))]
            )
        hits = self.searcher.search(query, n, count=False).hits
        return [self.searcher.doc(a)["row"][0] for _, a in hits]


def _quality(engine: Any, cases: list[dict[str, Any]], docs: list[str]) -> dict[str, float]:
    from assistant.index.lexical import terms

    out = {}
    for label, with_options in (("question", False), ("question+options", True)):
        hit5, rr = [], []
        for case in cases:
            text = case["question"] + (" " + " ".join(case["choices"]) if with_options else "")
            ranked: list[str] = []
            for row in engine.search(sorted(set(terms(text))), 100, None):
                if docs[row] not in ranked:
                    ranked.append(docs[row])
            gold = set(case["gold_doc_ids"])
            first = next((i for i, d in enumerate(ranked[:10]) if d in gold), None)
            hit5.append(first is not None and first < 5)
            rr.append(0.0 if first is None else 1 / (first + 1))
        out[f"hit@5 ({label})"] = round(sum(hit5) / len(hit5), 3)
        out[f"MRR@10 ({label})"] = round(sum(rr) / len(rr), 3)
    return out


def _latency(engine: Any, queries: list[list[str]], ts: Any | None) -> tuple[float, float]:
    times = []
    for words in queries:
        t = time.perf_counter()
        engine.search(words, 60, ts)
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return round(statistics.median(times), 2), round(times[int(0.95 * len(times))], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True)
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--engines", default="bm25s,sqlite-fts5,tantivy")
    args = parser.parse_args()

    import numpy as np

    from assistant.index.lexical import index_text, terms, tokenize
    from assistant.index.store import Store
    from assistant.settings import load_settings

    store = Store(load_settings(home=Path(args.home)))
    texts, docs, stamps = [], [], []
    for chunk in store.iter_chunks():
        meta = chunk.meta  # type: ignore[union-attr]
        texts.append(index_text(meta.title, chunk.text))  # type: ignore[union-attr]
        docs.append(meta.doc_id)
        stamps.append(meta.published_ts if meta.published_ts is not None else -1)
    tokens = tokenize(texts) * args.copies
    docs, stamps = docs * args.copies, stamps * args.copies
    ts = np.array(stamps)
    lines = (RTQA / "questions.dev.jsonl").read_text(encoding="utf-8").splitlines()
    cases = [json.loads(x) for x in lines if x.strip()]
    gold = [c for c in cases if c.get("gold_doc_ids")]
    queries = [sorted(set(terms(c["question"]))) for c in cases]
    print(json.dumps({"chunks": len(tokens), "gold_questions": len(gold)}), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.engines.split(","):
            folder = Path(tmp) / name
            folder.mkdir()
            t = time.perf_counter()
            engine: Any
            if name == "bm25s":
                engine = Bm25s(tokens, folder)
            elif name == "sqlite-fts5":
                engine = Fts5(tokens, stamps, folder)
            else:
                engine = Tantivy(tokens, stamps, folder)
            row: dict[str, Any] = {"engine": name, "build_s": round(time.perf_counter() - t, 1),
                                   "size_mb": round(_size_mb(engine.path), 1)}  # fmt: skip
            if args.copies == 1:
                row |= _quality(engine, gold, docs)
            row["query_ms p50/p95"] = _latency(engine, queries, None)
            row["filtered_ms p50/p95"] = _latency(engine, queries, ts)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
