"""Summaries of a run: ``summary.json`` (numbers), ``summary.md`` and a self-contained HTML report.

Every mean is shown with its bootstrap confidence interval and its coverage (how many cases had
a value, were not applicable, or failed), and with the judge that produced it.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from evals import metrics as m
from evals.dataset import Suite, is_maximum

STAGES = ("total_ms", "retrieve_ms", "embed_ms", "dense_ms", "bm25_ms", "extract_ms",
          "generate_ms", "verify_ms", "search_ms")  # fmt: skip
HEADLINE = ("hit_at_5", "mrr_at_10", "ndcg_at_10", "answer_bearing_at_5", "answer_recall",
            "answer_first", "choice_accuracy", "citation_recall", "citation_precision")  # fmt: skip
JUDGED = {"citation_recall", "citation_precision"}


def _scores(records: list[dict[str, Any]], name: str) -> list[m.Score]:
    out = []
    for r in records:
        if r.get("error"):
            out.append(m.Score.fail(r["error"]))
        elif name in r["scores"]:
            out.append(m.Score.from_json(r["scores"][name]))
    return out


def summarise(
    suite: Suite, manifest: dict[str, Any], records: list[dict[str, Any]]
) -> dict[str, Any]:
    names = sorted({n for r in records for n in (r.get("scores") or {})})
    metrics = {}
    for name in names:
        agg = m.aggregate(_scores(records, name)).as_json()
        if name in JUDGED:
            agg["judge"] = manifest["judge"]
        metrics[name] = agg
    ok = [r for r in records if not r.get("error")]
    abstention = {
        k: s.as_json() for k, s in m.abstention_scores(
            (r["abstained"], r["must_abstain"]) for r in ok
        ).items()
    }  # fmt: skip
    latency = {}
    for stage in STAGES:
        values = [r["timings"][stage] for r in ok if stage in r.get("timings", {})]
        if values:
            latency[stage] = {"p50": m.percentile(values, 50), "p95": m.percentile(values, 95),
                              "n": len(values)}  # fmt: skip
    usage = {
        k: sum(r["usage"].get(k, 0) for r in ok) for k in ("prompt_tokens", "completion_tokens")
    }
    by_tag: dict[str, dict[str, Any]] = defaultdict(dict)
    for tag in sorted({t for r in records for t in r["tags"]}):
        tagged = [r for r in records if tag in r["tags"]]
        by_tag[tag]["n"] = len(tagged)
        for name in HEADLINE:
            values = [s.value for s in _scores(tagged, name) if s.value is not None]
            by_tag[tag][name] = sum(values) / len(values) if values else None
    flat: dict[str, float | None] = {name: agg["mean"] for name, agg in metrics.items()}
    flat.update({k: v.get("value") for k, v in abstention.items()})
    flat.update({f"{stage}_p95": v["p95"] for stage, v in latency.items()})
    failures = suite.failures(flat)
    summary: dict[str, Any] = {
        "manifest": manifest,
        "metrics": metrics,
        "abstention": abstention,
        "latency_ms": latency,
        "usage": usage,
        "by_tag": dict(by_tag),
        "errors": sum(bool(r.get("error")) for r in records),
        "gate": {
            "enforced": suite.gate,
            "thresholds": suite.thresholds,
            "failures": failures,
            "passed": not failures,
        },
    }
    if suite.kind == "realtimeqa":
        from evals import realtimeqa

        summary["baselines"] = realtimeqa.baselines(realtimeqa.data_dir(suite.options.get("dir")))
    return summary


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(summary: dict[str, Any]) -> str:
    man = summary["manifest"]
    lines = [
        f"# Eval: {man['suite']} ({man['cases']} cases, {man['mode']} mode)",
        "",
        f"judge: `{man['judge']}` · embedder: `{man['embedder']}` · corpus: `{man['corpus']}` · "
        f"commit: `{man.get('git_commit') or '-'}` · {man['created']}",
        "",
        "| metric | mean | 95% CI | n | n/a | errors |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, a in summary["metrics"].items():
        ci = f"{_fmt(a['ci_low'])}–{_fmt(a['ci_high'])}" if a["ci_low"] is not None else "–"
        judge = f" ({a['judge']})" if "judge" in a else ""
        if is_maximum(name):
            judge += " ↓ lower is better"
        lines.append(f"| {name}{judge} | {_fmt(a['mean'])} | {ci} | {a['n']} | {a['n_na']} | "
                     f"{a['n_error']} |")  # fmt: skip
    lines += ["", "| abstention | value |", "| --- | --- |"]
    lines += [f"| {k} | {_fmt(v.get('value'))} |" for k, v in summary["abstention"].items()]
    lines += ["", "| latency (lower is better) | p50 ms | p95 ms |", "| --- | --- | --- |"]
    lines += [f"| {k} | {_fmt(v['p50'], 1)} | {_fmt(v['p95'], 1)} |"
              for k, v in summary["latency_ms"].items()]  # fmt: skip
    usage = summary["usage"]
    lines += [
        "",
        f"tokens: {usage['prompt_tokens']} prompt, {usage['completion_tokens']} completion",
    ]
    if "baselines" in summary:
        lines += ["", "| published system (same questions) | score |", "| --- | --- |"]
        lines += [f"| {cfg} | {', '.join(f'{k}={v}' for k, v in vals.items() if k != 'n')} |"
                  for cfg, vals in summary["baselines"].items()]  # fmt: skip
    gate = summary["gate"]
    verdict = "passed" if gate["passed"] else "FAILED: " + "; ".join(gate["failures"])
    lines += ["", f"gate ({'enforced' if gate['enforced'] else 'targets only'}): {verdict}"]
    return "\n".join(lines) + "\n"


def _bars(metrics: dict[str, Any]) -> str:
    rows = [(n, a) for n, a in metrics.items() if a["mean"] is not None and 0 <= a["mean"] <= 1]
    width, row = 640, 22
    parts = [f'<svg width="{width}" height="{row * len(rows) + 10}" role="img">']
    for i, (name, a) in enumerate(rows):
        y, x0, span = i * row + 5, 190, 400
        parts.append(f'<text x="0" y="{y + 14}" font-size="12">{html.escape(name)}</text>')
        parts.append(
            f'<rect x="{x0}" y="{y}" width="{span * a["mean"]:.1f}" height="16" fill="#4a7bd0"/>'
        )
        if a["ci_low"] is not None:
            lo, hi = x0 + span * a["ci_low"], x0 + span * a["ci_high"]
            parts.append(
                f'<line x1="{lo:.1f}" x2="{hi:.1f}" y1="{y + 8}" y2="{y + 8}" stroke="#111"/>'
            )
        parts.append(
            f'<text x="{x0 + span + 6}" y="{y + 14}" font-size="12">{a["mean"]:.3f}</text>'
        )
    return "".join(parts) + "</svg>"


def _histogram(values: list[float], bins: int = 20) -> str:
    if not values:
        return "<p>no timings</p>"
    top = max(values) or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int(v / top * bins))] += 1
    peak = max(counts)
    bars = "".join(
        f'<rect x="{i * 30}" y="{120 - h:.1f}" width="26" height="{h:.1f}" fill="#d08a4a">'
        f"<title>{c} cases ≤ {top * (i + 1) / bins:.0f} ms</title></rect>"
        for i, c in enumerate(counts)
        for h in [110 * c / peak]
    )
    return (
        f'<svg width="{bins * 30}" height="140">{bars}'
        f'<text x="0" y="136" font-size="11">0 ms</text>'
        f'<text x="{bins * 30 - 80}" y="136" font-size="11">{top:.0f} ms</text></svg>'
    )


def _expected(r: dict[str, Any]) -> str:
    return ", ".join(r["answers"]) or ("abstain" if r["must_abstain"] else "-")


def _worst(records: list[dict[str, Any]], n: int = 10) -> str:
    def badness(r: dict[str, Any]) -> float:
        if r.get("error"):
            return -1.0
        s = r["scores"]
        keys = ("answer_recall", "choice_accuracy", "hit_at_5")
        vals = [s[k]["value"] for k in keys if k in s and "value" in s[k]]
        wrong_abstain = r["abstained"] != r["must_abstain"]
        return (sum(vals) / len(vals) if vals else 1.0) - wrong_abstain

    out = []
    for r in sorted(records, key=badness)[:n]:
        passages = "".join(
            f"<li><b>[{p['rank']}]</b> {html.escape(p['title'] or p['doc_id'])}: "
            f"{html.escape(p['text'][:300])}…</li>"
            for p in r.get("passages", [])[:3]
        )
        out.append(
            f"<details><summary>{html.escape(r['id'])}: {html.escape(r['question'])}</summary>"
            f"<p><b>expected</b>: {html.escape(_expected(r))}"
            + (f" · <b>error</b>: {html.escape(str(r['error']))}" if r.get("error") else "")
            + "</p>"
            f"<pre>{html.escape(str(r.get('answer', '')))}</pre><ol>{passages}</ol></details>"
        )
    return "".join(out)


def html_report(summary: dict[str, Any], records: list[dict[str, Any]]) -> str:
    from markdown_it import MarkdownIt  # type: ignore[import-not-found]  # rich depends on it

    body = MarkdownIt().enable("table").render(markdown(summary))
    totals = [r["timings"]["total_ms"] for r in records if "total_ms" in r.get("timings", {})]
    tags = "".join(
        f"<tr><td>{html.escape(t)}</td><td>{v['n']}</td>"
        + "".join(f"<td>{_fmt(v.get(k))}</td>" for k in HEADLINE)
        + "</tr>"
        for t, v in summary["by_tag"].items()
    )
    head = "".join(f"<th>{k}</th>" for k in HEADLINE)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>newsdesk eval</title><style>"
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto}"
        "table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}pre{white-space:pre-wrap}"
        "</style></head><body>"
        + body
        + "<h2>Metrics (bars: mean, line: 95% CI)</h2>"
        + _bars(summary["metrics"])
        + "<h2>Latency per case</h2>"
        + _histogram(totals)
        + f"<h2>By tag</h2><table><tr><th>tag</th><th>n</th>{head}</tr>{tags}</table>"
        + "<h2>Worst cases</h2>"
        + _worst(records)
        + "</body></html>"
    )


def write_reports(out: Path, summary: dict[str, Any], records: list[dict[str, Any]]) -> None:
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    (out / "summary.md").write_text(markdown(summary), encoding="utf-8")
    (out / "report.html").write_text(html_report(summary, records), encoding="utf-8")
