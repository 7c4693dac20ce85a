"""Human output for the terminal (rich); machine output is ``Answer.as_json``."""

from __future__ import annotations

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

from assistant.types import Answer, Passage


def _source_line(n: int, p: Passage) -> str:
    when = p.published_at[:10]
    bits = " · ".join(escape(x) for x in (p.source, when) if x)
    title = escape(p.title or "Untitled article")
    return f"[bold][{n}][/bold] {title}" + (f" [dim]— {bits}[/dim]" if bits else "")


def render_answer(console: Console, answer: Answer) -> None:
    if answer.notice:
        console.print(f"[dim]{escape(answer.notice)}[/dim]")
    style = "yellow" if answer.abstained else ""
    console.print(Text(answer.text, style=style))
    if answer.citations:
        console.print()
        console.print("[bold]Sources[/bold]")
        shown: set[int] = set()
        for c in answer.citations:  # one line per article number, however many passages
            if c.n in shown:
                continue
            shown.add(c.n)
            same = [x for x in answer.citations if x.n == c.n]
            ok = all(x.supported for x in same)
            mark = "" if ok else " [red](claim not supported by this passage)[/red]"
            console.print(_source_line(c.n, c.passage) + mark)
            if c.also_reported_by:
                also = escape(", ".join(c.also_reported_by))
                console.print(f"    [dim]also reported by {also}[/dim]")
            if c.passage.location:
                console.print(f"    [dim]{escape(c.passage.location)}[/dim]")
    console.print(
        f"[dim]{answer.mode} · {len(answer.passages)} passages · "
        f"{answer.timings.get('total_ms', 0):.0f} ms[/dim]"
    )


def render_passages(console: Console, passages: list[Passage]) -> None:
    if not passages:
        console.print("[yellow]No matching passages.[/yellow]")
        return
    for p in passages:
        head = _source_line(p.rank, p) + f" [dim]score {p.score:.4f}[/dim]"
        body = p.text if len(p.text) <= 600 else p.text[:600].rsplit(" ", 1)[0] + " …"
        console.print(Panel(Group(Text(body)), title=head, title_align="left", expand=True))
