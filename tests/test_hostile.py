"""A hostile-input corpus, generated here (never committed), through the real CLI entry.

Every case must end with exit 0 or 2 within a time bound, each skipped or salvaged input in one
line that names it, and the good article beside it stored and searchable. Cases: deep JSON,
huge and empty fields, every encoding problem, control characters and markup in file names,
symlink loops (folders and globs), CJK and space-free text, a 10 MB article, a truncated
archive, an archive over the size limit, deeply nested HTML.
"""

from __future__ import annotations

import codecs
import gzip
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assistant.surfaces.cli import main

ROOT = Path(__file__).resolve().parent.parent
TIME_BOUND_S = 60  # per case, on 2 cores; the slowest takes ~10 s
GOOD = "good.md"
GOOD_TEXT = (
    "The lighthouse keeper on Marrow Island reported a pod of orcas near the harbor mouth on "
    "Tuesday. Ferry crossings were delayed by an hour while the animals passed."
)
FILLER = "The convoy reached the river crossing at dawn, officials said on Monday. "


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str, float]:
    """``newsdesk ARGS`` in-process, in a thread so that a hang fails the test, not the run."""
    result: list[Any] = []

    def target() -> None:
        try:
            result.append(main(list(args)))
        except BaseException as exc:
            result.append(exc)

    started = time.perf_counter()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(TIME_BOUND_S)
    elapsed = time.perf_counter() - started
    assert not thread.is_alive(), f"newsdesk {args[0]} still running after {TIME_BOUND_S}s"
    captured = capsys.readouterr()
    assert isinstance(result[0], int), f"newsdesk {args[0]} raised {result[0]!r}"
    return result[0], captured.out, captured.err, elapsed


# ------------------------------------------------------------------------- the corpus


def _jsonl(path: Path, rows: list[Any], raw: list[bytes] | None = None) -> None:
    lines = [json.dumps(r).encode() for r in rows] + list(raw or [])
    path.write_bytes(b"\n".join(lines) + b"\n")


def deep_json(folder: Path) -> None:
    _jsonl(
        folder / "deep.jsonl",
        [{"id": "fine", "text": FILLER}],
        [b"[" * 500_000 + b"]" * 500_000, b'{"text": ' * 100_000 + b'"x"' + b"}" * 100_000],
    )


def huge_and_empty_fields(folder: Path) -> None:
    _jsonl(
        folder / "fields.jsonl",
        [
            {"id": "big-title", "title": "T" * 3_000_000, "text": FILLER},
            {"id": "empty-title", "title": "", "author": "", "text": FILLER + "Two."},
            {"id": "empty-text", "text": ""},
            {"id": "i" * 100_000, "text": FILLER},
            {"id": "odd-types", "title": [1, {"a": None}], "url": ["x"], "text": FILLER + "3."},
            {"id": "", "text": "   \n\t  "},
        ],
    )


def encodings(folder: Path) -> None:
    (folder / "cp1252.txt").write_bytes("Café talks in Zürich ended at 9 o’clock.".encode("cp1252"))
    (folder / "utf16.md").write_bytes(codecs.BOM_UTF16_LE + FILLER.encode("utf-16-le"))
    (folder / "bom.txt").write_bytes(codecs.BOM_UTF8 + FILLER.encode())
    (folder / "random.txt").write_bytes(bytes(b for b in random.Random(3).randbytes(20_000) if b))
    (folder / "nul.txt").write_bytes(b"text\x00" * 1000)
    (folder / "empty.md").write_bytes(b"")
    _jsonl(folder / "lines.jsonl", [], [b'{"id": "latin", "text": "Caf\xe9 society."}'])
    with open(os.fsencode(folder) + b"/caf\xe9-name.txt", "wb") as handle:
        handle.write(b"An article whose file name is not UTF-8 at all.")


def dates(folder: Path) -> None:
    _jsonl(
        folder / "dates.jsonl",
        [
            {"id": "rel", "text": FILLER + "1.", "published_at": "yesterday"},
            {"id": "num", "text": FILLER + "2.", "published_at": "10/09/2024"},
            {"id": "num-de", "text": FILLER + "3.", "published_at": "10/09/2024", "lang": "de"},
            {"id": "rfc", "text": FILLER + "4.", "date": "Mon, 07 Mar 2022 10:15:00 GMT"},
            {"id": "words", "text": FILLER + "5.", "publish_date": "March 7, 2022"},
            {"id": "obj", "text": FILLER + "6.", "published_at": {"y": 2022}},
        ],
    )


# as shown: control and bidi characters escaped, markup as written
NASTY_NAMES = {
    "x[/bold].md": "x[/bold].md",  # a folder "x[" holding "bold].md"
    "esc\x1b[31mred.md": "esc\\x1b[31mred.md",
    "two\nlines.md": "two\\nlines.md",
    "rtl\u202etxt.exe.md": "rtl\\u202etxt.exe.md",
    "[link=x]y.md": "[link=x]y.md",
}


def nasty_names(folder: Path) -> None:
    (folder / "x[").mkdir()
    for name in NASTY_NAMES:
        (folder / name).write_bytes(b"\x00binary")  # skipped: its name is printed


def symlink_loops(folder: Path) -> None:
    inner = folder / "a" / "b"
    inner.mkdir(parents=True)
    (inner / "story.txt").write_text(FILLER * 3, encoding="utf-8")
    (inner / "loop").symlink_to(folder)
    (folder / "a" / "again").symlink_to(folder / "a")
    (folder / "a" / "copy.txt").symlink_to(inner / "story.txt")


def scripts(folder: Path) -> None:
    rnd = random.Random(4)
    han = (
        "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学"
    )
    (folder / "cjk.txt").write_text("".join(rnd.choices(han, k=300_000)), encoding="utf-8")
    (folder / "cjk-stops.txt").write_text(
        "".join("".join(rnd.choices(han, k=25)) + "。" for _ in range(100)), encoding="utf-8"
    )
    (folder / "spacefree.txt").write_text("".join(rnd.choices("abcdefgh", k=1_000_000)))


def ten_mb_article(folder: Path) -> None:
    paragraph = (FILLER * 8).strip() + "\n\n"
    (folder / "huge.txt").write_text(paragraph * (10_000_000 // len(paragraph)), encoding="utf-8")


def truncated_archive(folder: Path) -> None:
    rows = [{"id": f"r{i}", "text": FILLER + str(random.Random(i).random())} for i in range(400)]
    data = gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode())
    (folder / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])


def archive_over_limit(folder: Path) -> None:
    """With NEWSDESK_MAX_ARTICLE_MB=1 a 1.5 MB archive streams, its short records stored, its
    1.5 MB line skipped as too large; so is a 1.5 MB .txt, read whole."""
    rows = [{"id": f"n{i}", "text": f"Note {i}: " + FILLER} for i in range(20)]
    rows.append({"id": "long", "text": FILLER * 20_000})
    _jsonl(folder / "archive.jsonl", rows)
    (folder / "big.txt").write_text(FILLER * 20_000, encoding="utf-8")


def deep_html(folder: Path) -> None:
    body = "<div>" * 100_000 + f"<p>{FILLER * 5}</p>" + "</div>" * 100_000
    (folder / "deep.html").write_text(f"<html><body>{body}</body></html>", encoding="utf-8")


# name, corpus, extra args (relative to the folder), env, expected skip substrings, expected
# warning substrings, exit code
CASES: list[tuple[str, Callable[[Path], None], list[str], dict[str, str], list[str], list[str]]]
CASES = [
    ("deep JSON", deep_json, [], {}, ["nested too deeply", "nested too deeply"], []),
    (
        "huge and empty fields",
        huge_and_empty_fields,
        [],
        {},
        ["'text' is missing or empty", "'id' is too long", "'text' is missing or empty"],
        ["'title' cut to 2,000", "'title' is not text", "'url' is not text"],
    ),
    (
        "encodings",
        encodings,
        [],
        {},
        ["random.txt: binary file", "nul.txt: binary file", "empty.md: empty file"],
        ["cp1252.txt: 3 bytes that are not UTF-8", "lines.jsonl:1: 1 byte that is not UTF-8"],
    ),
    (
        "dates",
        dates,
        [],
        {},
        [],
        [
            "dates.jsonl:1: field 'published_at' has unparseable date 'yesterday'; kept undated",
            "dates.jsonl:6: field 'published_at' is not a date (dict); kept undated",
        ],
    ),
    ("symlink loops", symlink_loops, ["**/*.txt", "a/**"], {}, [], []),
    (
        "CJK and space-free text",
        scripts,
        [],
        {"NEWSDESK_MAX_CHUNKS_PER_ARTICLE": "40"},
        [],
        ["cjk.txt: article cut at 40 chunks", "spacefree.txt: article cut at 40 chunks"],
    ),
    (
        "10 MB article",
        ten_mb_article,
        [],
        {"NEWSDESK_MAX_CHUNKS_PER_ARTICLE": "20"},
        [],
        ["huge.txt: article cut at 20 chunks (the first 0.2% of its text kept)"],
    ),
    ("truncated archive", truncated_archive, [], {}, ["cut.jsonl.gz: cannot read on after"], []),
    (
        "archive over the size limit",
        archive_over_limit,
        [],
        {"NEWSDESK_MAX_ARTICLE_MB": "1"},
        [
            "archive.jsonl:21: line too large (1.5 MB > 1.0 MB limit; raise NEWSDESK_MAX_ARTIC",
            "big.txt: too large (1.5 MB > 1.0 MB limit; raise NEWSDESK_MAX_ARTICLE_MB)",
        ],
        [],
    ),
    # libxml2 stops at 256 levels: the text is out of reach, the page skipped in one line
    ("deep HTML", deep_html, [], {}, ["deep.html: no article text found"], []),
]


@pytest.mark.parametrize(
    ("make", "extra", "env", "skips", "warns"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_hostile_inputs_end_cleanly_and_good_inputs_are_stored(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    make: Callable[[Path], None],
    extra: list[str],
    env: dict[str, str],
    skips: list[str],
    warns: list[str],
) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / GOOD).write_text(f"---\ntitle: Orcas\n---\n\n{GOOD_TEXT}\n", encoding="utf-8")
    make(folder)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    args = [str(folder), *(f"{folder}/{pattern}" for pattern in extra)]

    code, out, _, elapsed = cli(capsys, "ingest", *args, "--json")
    assert elapsed < TIME_BOUND_S
    report = json.loads(out)
    assert code == (2 if skips else 0), report
    for kind, expected in (("skipped", skips), ("warnings", warns)):
        lines = [f"{item['where']}: {item['reason']}" for item in report[kind]]
        assert all("\n" not in line and "\x1b" not in line for line in lines), lines
        assert len(lines) == len(expected), (kind, lines)
        unmatched = list(lines)
        for fragment in expected:
            match = next((line for line in unmatched if fragment in line), None)
            assert match is not None, (kind, fragment, lines)
            unmatched.remove(match)

    code, out, _, _ = cli(capsys, "search", "orcas near the lighthouse ferry", "-k", "3", "--json")
    results = json.loads(out)["results"]
    assert code == 0 and results and results[0]["text"] == GOOD_TEXT

    # a second run changes nothing and says the same
    code, out, _, _ = cli(capsys, "ingest", *args, "--json")
    again = json.loads(out)
    assert code == (2 if skips else 0)
    assert again["added"] == again["updated"] == again["chunks"] == 0
    assert again["unchanged"] == report["added"]
    assert again["skipped"] == report["skipped"]
    assert [w["where"] for w in again["warnings"]] == [w["where"] for w in report["warnings"]]


def test_encodings_case_stores_the_salvaged_text(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    encodings(tmp_path)
    code, out, _, _ = cli(capsys, "ingest", str(tmp_path), "--json")
    assert code == 2 and json.loads(out)["added"] == 5  # cp1252, utf16, bom, non-UTF-8 name, line
    code, out, _, _ = cli(capsys, "search", "Café talks in Zürich", "-k", "10", "--json")
    texts = {r["text"] for r in json.loads(out)["results"]}
    assert "Caf\ufffd talks in Z\ufffdrich ended at 9 o\ufffdclock." in texts
    assert "An article whose file name is not UTF-8 at all." in texts


def test_dates_case_keeps_every_article_with_what_could_be_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    dates(tmp_path)
    code, out, _, _ = cli(capsys, "ingest", str(tmp_path), "--json")
    assert code == 0 and json.loads(out)["added"] == 6
    code, out, _, _ = cli(capsys, "search", FILLER, "-k", "10", "--json")
    by_text = {r["text"][-2:]: r["published_at"] for r in json.loads(out)["results"]}
    assert by_text == {
        "1.": "",
        "2.": "2024-10-09",
        "3.": "2024-09-10",
        "4.": "2022-03-07T10:15:00+00:00",
        "5.": "2022-03-07",
        "6.": "",
    }


def test_nasty_file_names_are_printed_escaped_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Markup in a name used to fail the command after storing (exit 1), and ANSI escapes
    reached the terminal."""
    nasty_names(tmp_path)
    (tmp_path / GOOD).write_text(GOOD_TEXT, encoding="utf-8")
    code, out, err, _ = cli(capsys, "ingest", str(tmp_path))
    assert code == 2, err
    assert "1 added" in out and "5 skipped" in out
    assert "\x1b" not in err and "\u202e" not in err
    shown = [line for line in err.splitlines() if line.startswith("skipped ")]
    assert sorted(shown) == sorted(
        f"skipped {tmp_path}/{name}: binary file, not text (NUL bytes)"
        for name in NASTY_NAMES.values()
    )


def test_real_console_script_output_has_no_control_characters(tmp_path: Path) -> None:
    """The installed entry point in a subprocess: stderr (skips and logged warnings) is inert."""
    nasty_names(tmp_path)
    (tmp_path / "cp1252\x1b[2J.txt").write_bytes("Café at nine.".encode("cp1252"))
    env = {**os.environ, "NEWSDESK_HOME": str(tmp_path / "home"), "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "assistant.surfaces.cli", "ingest", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=TIME_BOUND_S * 2,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert b"\x1b" not in done.stderr + done.stdout
    err = done.stderr.decode()
    assert "x[/bold].md: binary file" in err
    assert "cp1252\\x1b[2J.txt: 1 byte that is not UTF-8 replaced" in err  # a logged warning
