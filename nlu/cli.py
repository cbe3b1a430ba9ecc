"""``hotline nlu …``: train, parse, evaluate, export-rasa (a typer sub-app named ``app``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Chinese NLU: train, parse, evaluate, export to Rasa.", no_args_is_help=True)
console = Console(stderr=True)
TASKS = ("category", "location", "subject", "request_type", "intent")


def _settings() -> Any:
    from config.settings import get_settings

    return get_settings()


def _data_dir(settings: Any, data: Path | None) -> Path:
    if data:
        return data
    p = Path(settings.shared_data_dir)
    if not p.is_absolute():
        p = Path(__file__).resolve().parent.parent / p
    return p


@app.command()
def train(
    data: Annotated[
        Path | None, typer.Option(help="shared data dir (default: settings.shared_data_dir)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="artifact path (default: nlu/model/nlu-model.npz)")] = None,
    full: Annotated[
        bool,
        typer.Option(
            help="after measuring on the split, refit on all rows (how the committed artifact is made; "
            "metrics.json keeps the split model's figures, evaluate flags rows the artifact learned)"
        ),
    ] = False,
    heldout: Annotated[
        Path | None,
        typer.Option(help="held-out split CSV to write (default: HOTLINE_DATA_DIR/nlu/category_heldout.csv)"),
    ] = None,
    limit: Annotated[int | None, typer.Option(hidden=True)] = None,
    location: Annotated[
        bool,
        typer.Option(help="also retrain the location CRF and mention filter (nlu/model/location-*; ~1.5 min more)"),
    ] = False,
) -> None:
    """Train the category + intent models and write a versioned artifact with its metrics.

    The location models are separate, committed files; `--location` retrains them too (the same as
    `python -m nlu.location_model train` and `python -m nlu.location_filter train`)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .builtin import artifact_path
    from .train import train as do_train

    settings = _settings()
    data_dir = _data_dir(settings, data)
    if not (data_dir / "categories").exists():
        console.print(f"[red]no labelled data under {data_dir}/categories[/red]")
        raise typer.Exit(2)
    out_path = out or artifact_path(settings.nlu_model_path)
    heldout = heldout or Path(settings.data_dir) / "nlu" / "category_heldout.csv"
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("training", total=1.0)

        def step(msg: str, frac: float) -> None:
            progress.update(task, completed=frac, description=msg)

        info = do_train(data_dir, out_path, heldout, full=full, limit=limit, step=step)
    h = info.get("heldout", {})
    console.print(f"artifact: {out_path} ({info['size_bytes'] / 1e6:.1f} MB) in {info['train_seconds']} s")
    if "macro_f1" in h:
        console.print(
            f"held-out macro-F1 {h['macro_f1']:.4f}  accuracy {h['accuracy']:.4f}  "
            f"p50 {h['p50_ms']} ms  p99 {h['p99_ms']} ms  (n={h['n']})"
        )
    if location:
        from . import location_filter, location_model

        console.print("location CRF: training on the address + CLUENER corpora …")
        crf = location_model.train(data_dir, location_model.MODEL_PATH, location_model.SEED, 60)
        console.print(f"location CRF: {location_model.MODEL_PATH}")
        location_filter.main(["train", "--data", str(data_dir)])
        info["location_crf"] = crf
    typer.echo(json.dumps(info, ensure_ascii=False))


@app.command()
def parse(
    text: str,
    title: Annotated[str, typer.Option(help="留言主题 / e-mail subject, if any")] = "",
    drafting: Annotated[bool, typer.Option(help="a ticket draft is open (context)")] = False,
    state: Annotated[
        str,
        typer.Option(help="where the conversation stands: idle | filed | awaiting_location | confirming | awaiting_rating"),
    ] = "",
) -> None:
    """Parse one message and print the result as pretty JSON."""
    from . import get_backend
    from .evaluate import STATE_CONTEXT

    if state and state not in STATE_CONTEXT:
        typer.echo(f"unknown state {state!r}; choose one of: {', '.join(STATE_CONTEXT)}", err=True)
        raise typer.Exit(2)
    ctx: dict[str, Any] = dict(STATE_CONTEXT[state]) if state else {}
    if title:
        ctx["title"] = title
    if drafting:
        ctx["drafting"] = True
    try:
        backend = get_backend(_settings())
    except RuntimeError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    typer.echo(json.dumps(backend.parse(text, ctx).model_dump(), ensure_ascii=False, indent=2))


@app.command("export-rasa")
def export_rasa_cmd(directory: Path) -> None:
    """Write a Rasa 3.6 project (config.yml with JiebaTokenizer, data/nlu.yml, domain.yml)."""
    from .rasa_export import export_rasa

    files = export_rasa(directory)
    for f in files:
        console.print(f"wrote {f}")


@app.command()
def evaluate(
    task: Annotated[str, typer.Option(help="category | location | subject | request_type | intent")],
    data: Annotated[Path, typer.Option(help="CSV (category, subject) or JSONL (location, request_type, intent)")],
    limit: Annotated[int | None, typer.Option(help="evaluate only the first N rows")] = None,
) -> None:
    """Evaluate one task on a file: a readable report, then one JSON object as the LAST line.

    category, request_type: the JSON also counts the rows the artifact learned (`seen_in_training`)."""
    from . import get_backend
    from .evaluate import EVALUATORS, BadEvalFile, read_rows, seen_in_training

    if task not in TASKS:
        typer.echo(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}", err=True)
        raise typer.Exit(2)
    try:
        rows = read_rows(task, data)
    except (BadEvalFile, UnicodeDecodeError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if limit:
        rows = rows[:limit]
    try:
        backend = get_backend(_settings())
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    result = EVALUATORS[task](backend, rows)
    seen = seen_in_training(backend, task, rows)
    if seen is not None:
        result["seen_in_training"] = seen
        if seen:
            console.print(
                f"[yellow]{seen} of {len(rows)} rows were in this artifact's training data: "
                "these figures are not held-out (the held-out figures are in nlu/model/metrics.json)[/yellow]"
            )
    table = Table(title=f"NLU evaluation: {task} on {data.name}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in result.items():
        if isinstance(v, dict):
            for kk, vv in v.items():
                table.add_row(f"{k}[{kk}]", str(vv))
        else:
            table.add_row(k, str(v))
    Console(file=sys.stdout, width=100).print(table)
    typer.echo(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":  # python -m nlu.cli …
    app()
