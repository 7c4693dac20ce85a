"""Chunking throughput (characters/s) on English, CJK and space-free text, 100 kB to 10 MB.

  python benchmarks/chunking.py [--sizes 100000 1000000 10000000] [--reps 3]

For each kind of text and size: the median time of ``chunk_text`` over the reps (after a warm-up
that loads the tokenizers), characters per second, chunks made, and at the end the growth ratio
(time at the largest size / time at the smallest) / (size ratio): 1.0 is linear, 10 would be
quadratic over a 10x step. Results: docs/benchmarks.md.

English is RealTime QA article text from ../shared/benchmarks/realtimeqa (never copied), or
synthetic sentences when it is absent; CJK is synthetic Chinese (common characters, clauses and
。 stops, or none); space-free is random lowercase letters: no sentence or word boundary at all.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RTQA = Path(__file__).resolve().parent.parent.parent / "shared" / "benchmarks" / "realtimeqa"
HAN = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可"
    "她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三"
    "已老从动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女"
    "问力机给等几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由"
)


def english(n: int) -> str:
    corpus = RTQA / "corpus.jsonl.gz"
    parts: list[str] = []
    size = 0
    if corpus.is_file():
        with gzip.open(corpus, "rt", encoding="utf-8") as fh:
            for line in fh:
                text = json.loads(line).get("text") or ""
                parts.append(text)
                size += len(text) + 2
                if size >= n:
                    break
    if size < n:  # absent or short: synthetic sentences make up the rest
        rnd = random.Random(1)
        words = "the council voted to reopen port after talks officials said ships sail".split()
        while size < n:
            sentence = " ".join(rnd.choices(words, k=rnd.randint(8, 20))).capitalize() + "."
            parts.append(sentence)
            size += len(sentence) + 2
    return "\n\n".join(parts)[:n]


def cjk(n: int, stops: bool = True) -> str:
    rnd = random.Random(2)
    parts: list[str] = []
    size = 0
    while size < n:
        k = rnd.randint(12, 40)
        clause = "".join(rnd.choices(HAN, k=k))
        sentence = clause[: k // 2] + "，" + clause[k // 2 :] + "。" if stops else clause
        parts.append(sentence)
        size += len(sentence)
    return "".join(parts)[:n]


def space_free(n: int) -> str:
    return "".join(random.Random(3).choices("abcdefghijklmnopqrstuvwxyz", k=n))


KINDS: dict[str, Callable[[int], str]] = {
    "English": english,
    "CJK": cjk,
    "CJK, no stops": lambda n: cjk(n, stops=False),
    "space-free": space_free,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 10_000_000])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS))
    args = parser.parse_args()

    from ingest.chunking import CHUNKER_VERSION, chunk_text

    chunk_text("Warm up. The tokenizers load once.")
    print(f"{CHUNKER_VERSION}, Python {platform.python_version()}, {platform.machine()}")
    print(f"{'text':14} {'size':>11} {'median s':>9} {'chars/s':>11} {'chunks':>7}")
    sizes = sorted(args.sizes)
    for kind in args.kinds:
        seconds: dict[int, float] = {}
        for size in sizes:
            text = KINDS[kind](size)
            times = []
            for _ in range(args.reps):
                started = time.perf_counter()
                chunks = chunk_text(text)
                times.append(time.perf_counter() - started)
            seconds[size] = statistics.median(times)
            rate = size / seconds[size]
            print(f"{kind:14} {size:>11,} {seconds[size]:9.2f} {rate:11,.0f} {len(chunks):7,}")
        small, large = sizes[0], sizes[-1]
        growth = (seconds[large] / seconds[small]) / (large / small)
        print(f"{kind:14} growth {small:,} -> {large:,}: {growth:.2f} (1.0 = linear)")


if __name__ == "__main__":
    main()
