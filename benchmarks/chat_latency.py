"""How fast ``newsdesk chat`` answers: the first answer of a session against the later ones.

  python benchmarks/chat_latency.py [--sessions 5] [--home DIR]

Each session is a real ``newsdesk chat --extractive`` process reading its questions from a pipe
(the plain-text path), over the example articles (ingested once into a temp home unless --home
is given; the home is copied so the answer log starts empty). The same questions, follow-ups
included, are asked in every session. Per answer: seconds from writing the question to the
first line of the answer on stdout ("starts": the "→ searching" line of a follow-up does not
count) and to its footer line ("done"). Reported:
process start to banner, and the medians of the first answer and of the later answers (pooled
over sessions), with their ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "What did Biden tell Xi in their video call?",
    "How long did it last?",
    "What did Wang Yi say about mediation?",
    "And what did Borrell say?",
    "What did Kuleba ask China to do?",
    "When did he ask?",
    "Where did the Winter Olympics close?",
    "Did Xi urge restraint?",
]


def _ingested_home(work: Path) -> Path:
    home = work / "home"
    env = {**os.environ, "NEWSDESK_HOME": str(home)}
    articles = str(ROOT / "examples" / "articles")
    command = [sys.executable, "-m", "assistant.surfaces.cli", "ingest", articles]
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    return home


def _session(home: Path) -> tuple[float, list[tuple[float, float]]]:
    """Seconds to the banner, and (starts, done) seconds per question."""
    env = {**os.environ, "NEWSDESK_HOME": str(home), "NO_COLOR": "1"}
    env.pop("OPENAI_API_KEY", None)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant.surfaces.cli", "chat", "--extractive"], cwd=ROOT,
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    lines: queue.Queue[tuple[float, str]] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put((time.perf_counter(), line))
        lines.put((time.perf_counter(), ""))

    threading.Thread(target=pump, daemon=True).start()

    def until(marker: str) -> tuple[float, float]:
        first = None
        while True:
            at, line = lines.get(timeout=120)
            if not line:
                raise RuntimeError("the chat ended early")
            text = line.removeprefix("ask> ").strip()
            if first is None and text and not text.startswith("→ searching"):
                first = at
            if marker in line:
                return first or at, at

    banner = until("/help lists the commands")[1] - started
    times = []
    for question in QUESTIONS:
        asked = time.perf_counter()
        proc.stdin.write(question + "\n")
        proc.stdin.flush()
        first, done = until("· log #")
        times.append((first - asked, done - asked))
    proc.stdin.write("/quit\n")
    proc.stdin.flush()
    proc.wait(timeout=60)
    return banner, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--home", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = args.home or _ingested_home(work)
        banners, firsts, laters = [], [], []
        for i in range(args.sessions):
            home = work / f"session-{i}"
            shutil.copytree(source, home, ignore=shutil.ignore_patterns("logs.db*"))
            banner, times = _session(home)
            banners.append(banner)
            firsts.append(times[0])
            laters.extend(times[1:])
            print(f"session {i + 1}: start {banner:.2f}s, first {times[0][1]:.3f}s, later "
                  f"{' '.join(f'{d:.3f}' for _, d in times[1:])}", flush=True)  # fmt: skip
    med = statistics.median
    first_done, later_done = med(d for _, d in firsts), med(d for _, d in laters)
    first_start, later_start = med(s for s, _ in firsts), med(s for s, _ in laters)
    print(f"\nmachine: {platform.platform()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")  # fmt: skip
    print(f"sessions {args.sessions}, {len(QUESTIONS)} questions each (extractive)")
    print(f"process start to banner, median: {med(banners):.2f} s")
    print("| answer | starts (median) | done (median) |\n|---|---:|---:|")
    print(f"| first of a session | {first_start * 1e3:.0f} ms | {first_done * 1e3:.0f} ms |")
    print(f"| later ({len(laters)}) | {later_start * 1e3:.0f} ms | {later_done * 1e3:.0f} ms |")
    print(f"ratio first/later (done): {first_done / later_done:.1f}x; later p90 done: "
          f"{sorted(d for _, d in laters)[int(0.9 * len(laters))] * 1e3:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
