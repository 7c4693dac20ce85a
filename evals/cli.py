"""``newsdesk eval ...``: run suites, compare runs, add cases from feedback (thin adapters)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

app = typer.Typer(no_args_is_help=True, help="Measure answers, citations and abstention.")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
GATE_FAILED = 3  # exit code when a suite threshold is missed or compare finds a regression


@app.command("run")
def run(
    suite: Annotated[Path, typer.Argument(help="Suite folder or suite.toml.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for results and reports.")],
    gate: Annotated[bool, typer.Option(help="Exit 3 when a suite threshold is missed.")] = False,
    home: Annotated[Path | None, typer.Option(help="Reuse an ingested data home.")] = None,
    weeks: Annotated[
        int | None, typer.Option(min=1, help="RealTime QA: recent weeks only.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N questions.")] = None,
    extractive: Annotated[bool, typer.Option("--extractive", help="Force extractive.")] = False,
    llm: Annotated[bool, typer.Option("--llm", help="Force LLM mode.")] = False,
    no_date_scope: Annotated[
        bool, typer.Option("--no-date-scope", help="Ignore the suite's date_scope_days.")
    ] = False,
    date_scope: Annotated[
        int | None,
        typer.Option(
            "--date-scope", min=1, help="Hard window: the N days before each question's date."
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Answer every case as of YYYY-MM-DD (default: asked_on)."),
    ] = None,
) -> None:
    """Run an eval suite and write results.jsonl, summary.json, summary.md, report.html."""
    from evals.dataset import load_suite
    from evals.report import markdown
    from evals.runner import RunOptions, run_suite

    if extractive and llm:
        raise typer.BadParameter("--extractive and --llm exclude each other", param_hint="--llm")
    loaded = load_suite(suite)
    columns = (TextColumn(loaded.name), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("cases", total=None)
        options = RunOptions(
            out=out_dir,
            home=home,
            mode="extractive" if extractive else ("llm" if llm else None),
            weeks=weeks,
            limit=limit,
            no_date_scope=no_date_scope,
            date_scope=date_scope,
            as_of=_as_of(as_of),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
        summary = run_suite(loaded, options)
    out.print(markdown(summary), highlight=False, markup=False)
    out.print(f"wrote {out_dir}/results.jsonl, summary.json, summary.md, report.html")
    if gate and not summary["gate"]["passed"]:
        if not loaded.gate:
            err.print(f"thresholds of {loaded.name} are targets (gate = false): not gating")
            return
        err.print("[red]gate failed:[/red] " + "; ".join(summary["gate"]["failures"]))
        raise typer.Exit(GATE_FAILED)


def _as_of(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date like 2022-03-07", param_hint="--as-of"
        ) from None


@app.command("compare")
def compare(
    base: Annotated[Path, typer.Argument(help="Baseline run folder.")],
    new: Annotated[Path, typer.Argument(help="New run folder.")],
    force: Annotated[bool, typer.Option(help="Compare runs that are not comparable.")] = False,
) -> None:
    """Per-metric deltas with paired bootstrap CIs; exit 3 on a significant quality regression.

    Latency is reported but never gates: timings on shared machines are too noisy for that.
    """
    from evals.compare import compare as run_compare
    from evals.compare import render
    from evals.dataset import lower_is_better

    comparisons, reasons = run_compare(base, new, force)
    for reason in reasons:
        err.print(f"[yellow]warning:[/yellow] {reason}")
    out.print(render(comparisons), highlight=False, markup=False)
    if any(c.regression and not lower_is_better(c.metric) for c in comparisons):
        raise typer.Exit(GATE_FAILED)


@app.command("add-case")
def add_case(
    cases: Annotated[Path, typer.Argument(help="Cases file (JSONL) to append to.")],
    answer: Annotated[
        Path | None, typer.Option(help="Logged answer: `newsdesk ask --json` output.")
    ] = None,
    log_id: Annotated[
        int | None, typer.Option("--log", help="Id of an answer in the answer log (newsdesk log).")
    ] = None,
    verdict: Annotated[
        str | None,
        typer.Option(help="good | wrong | should-abstain (with --log: from its feedback)"),
    ] = None,
    passage: Annotated[
        list[str] | None, typer.Option(help="chunk_id of a passage that was right (repeatable).")
    ] = None,
    expect: Annotated[
        list[str] | None, typer.Option(help="An acceptable short answer (repeatable).")
    ] = None,
    case_id: Annotated[str | None, typer.Option("--id", help="Case id.")] = None,
) -> None:
    """Append a regression case built from an answer a user flagged."""
    from evals.feedback import append_case, case_from_answer, read_log_entry, read_logged_answer

    if (answer is None) == (log_id is None):
        raise typer.BadParameter("give either --answer FILE or --log ID", param_hint="--answer")
    history: list[str] = []
    if answer is not None:
        record = read_logged_answer(answer)
    else:
        assert log_id is not None
        record, feedback, history = read_log_entry(log_id)
        verdict = verdict or {"good": "good", "bad": "wrong"}.get(feedback or "")
    if verdict not in ("good", "wrong", "should-abstain"):
        raise typer.BadParameter("must be good, wrong or should-abstain", param_hint="--verdict")
    case = case_from_answer(
        record,
        verdict,
        passage or [],
        expect or [],
        case_id,  # type: ignore[arg-type]
        history,
    )
    append_case(cases, case)
    out.print(f"added case {case.id} to {cases}", highlight=False)
