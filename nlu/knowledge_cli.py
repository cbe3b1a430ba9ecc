"""``hotline knowledge …``: check a knowledge file, try a question on it (a typer sub-app ``app``).

What the city's editors run before saving their file in place (docs/knowledge.md). Each command
prints a readable report, then one JSON object as the last line (like ``hotline nlu evaluate``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(
    help="The knowledge base (知识库): check a file, try a question on it.", no_args_is_help=True
)


def _out() -> Console:
    """stdout as it is now (a test runner swaps it)."""
    return Console(file=sys.stdout, width=110, highlight=False, soft_wrap=True)


def _settings() -> Any:
    from config.settings import get_settings

    return get_settings()


def _file(file: Path | None) -> Path:
    """FILE, or the configured one; exit 2 when the knowledge base is turned off."""
    path = file or _settings().knowledge_file
    if path is None:
        typer.echo(
            "the knowledge base is turned off (HOTLINE_KNOWLEDGE_FILE is empty); name a FILE", err=True
        )
        raise typer.Exit(2)
    return Path(path)


@app.command()
def check(
    file: Annotated[Path | None, typer.Argument(help="the file (default: HOTLINE_KNOWLEDGE_FILE)")] = None,
) -> None:
    """Validate a knowledge file: entries, errors (exit 1) and warnings, each naming its entry.

    Errors make the file unusable (the running gateway keeps the previous version): a wrong or
    missing key, an empty or too long answer, a duplicate id, the same phrasing in two entries.
    Warnings are advice: no 相似问, an answer not checked for a year, phrasings that another
    entry would answer (the bot then answers neither)."""
    from .knowledge import KnowledgeBase, near_duplicates, read

    path, out = _file(file), _out()
    entries, found = read(path)
    errors = [p.message for p in found if p.level == "error"]
    if not errors and entries:
        found += near_duplicates(KnowledgeBase(entries))
    warnings = [p.message for p in found if p.level == "warning"]
    for message in errors:
        out.print(f"[red]错误[/red] {escape(message)}")
    for message in warnings:
        out.print(f"[yellow]提醒[/yellow] {escape(message)}")
    verdict = "[red]not usable[/red]" if errors else "[green]OK[/green]"
    out.print(
        f"{escape(str(path))}: {len(entries)} entries, {len(errors)} errors, {len(warnings)} warnings: {verdict}"
    )
    typer.echo(
        json.dumps(
            {"file": str(path), "entries": len(entries), "errors": errors, "warnings": warnings},
            ensure_ascii=False,
        )
    )
    if errors:
        raise typer.Exit(1)


@app.command()
def ask(
    text: Annotated[str, typer.Argument(help="a citizen's message")],
    file: Annotated[Path | None, typer.Option(help="the file (default: HOTLINE_KNOWLEDGE_FILE)")] = None,
    limit: Annotated[int, typer.Option(min=1, help="how many entries to list")] = 5,
    threshold: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="the bot's bar (default: HOTLINE_KNOWLEDGE_THRESHOLD)"),
    ] = None,
) -> None:
    """The entries most like TEXT with their scores, and whether the bot would answer it."""
    from .knowledge import KnowledgeBase, KnowledgeError

    path, out = _file(file), _out()
    bar = _settings().knowledge_threshold if threshold is None else threshold
    try:
        kb = KnowledgeBase.load(path, bar)
    except KnowledgeError as exc:
        typer.echo(f"error: {exc}\n(run `hotline knowledge check {path}`)", err=True)
        raise typer.Exit(2) from None
    hits = kb.search(text, limit)
    hit, reason = kb.verdict(text)
    table = Table(title=f"{len(kb.entries)} entries, threshold {bar:g}")
    table.add_column("#", justify="right")
    table.add_column("id")
    table.add_column("score", justify="right")
    table.add_column("matched (问法)")
    for rank, h in enumerate(hits, 1):
        table.add_row(str(rank), h.entry.id, f"{h.score:.3f}", escape(h.matched))
    out.print(table)
    why = {
        "answered": "answers",
        "no_match": "no answer: no entry is like it",
        "too_short": "no answer: too short to be a question",
        "below_threshold": f"no answer: the best is below {bar:g}",
        "tie": "no answer: two entries are nearly tied",
    }[reason]
    out.print(f"bot: {why}" + (f" with {hit.entry.id}:\n  {escape(hit.entry.answer)}" if hit else ""))
    typer.echo(
        json.dumps(
            {
                "text": text,
                "threshold": bar,
                "answer": hit.entry.id if hit else None,
                "reason": reason,
                "hits": [{"id": h.entry.id, "score": h.score, "matched": h.matched} for h in hits],
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":  # python -m nlu.knowledge_cli …
    app()
