"""``aimaas datasets …``: upload, inspect, split, download and delete datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aimaas.cli._common import client, human_bytes, out_console, print_json, table, transfer

__all__ = ["app"]

app = typer.Typer(help="Datasets: upload, inspect, split, download, delete.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
VersionOption = Annotated[str, typer.Option("--version", "-v", help="Version number or 'latest'.")]


def _version_arg(version: str) -> int | str:
    return int(version) if version.isdigit() else version


@app.command("upload")
def upload(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="File to upload.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset name (created when new).")],
    format: Annotated[
        str | None,
        typer.Option(help="csv, tsv, jsonl, parquet, text, text_zip or image_zip (inferred when omitted)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Upload a file as a new version of a dataset, with a progress bar."""
    c = client(ctx)
    with transfer(f"uploading {path.name}", f"checking {path.name}") as progress:
        version = c.datasets.upload(path, name=name, format=format, progress=progress)
    if as_json:
        print_json(version)
        return
    what = "Uploaded" if version.created else "Already stored (identical file)"
    out_console().print(
        f"{what}: {version.dataset} version {version.version} — {version.num_rows} rows, "
        f"{len(version.columns)} columns, {version.format}, {human_bytes(version.size_bytes)}",
        markup=False,
    )
    if version.target_suggestion:
        out_console().print(f"Suggested target column: {version.target_suggestion}", markup=False)


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the datasets of your tenant."""
    found = list(client(ctx).datasets.iter_all())
    if as_json:
        print_json(found)
        return
    rows = [(d.name, d.latest_version, d.created_at, d.id) for d in found]
    out_console().print(table("Datasets", ["name", "latest version", "created", "id"], rows))


@app.command("show")
def show(ctx: typer.Context, name: str, as_json: JsonOption = False) -> None:
    """Show a dataset: its versions and the columns of the latest one."""
    detail = client(ctx).datasets.get(name)
    if as_json:
        print_json(detail)
        return
    console = out_console()
    console.print(f"{detail.name} ({detail.id}), latest version {detail.latest_version}", markup=False)
    rows = [
        (v.version, v.format, v.num_rows, len(v.columns), human_bytes(v.size_bytes), v.sha256[:12], v.created_at)
        for v in detail.versions
    ]
    columns = ["version", "format", "rows", "columns", "size", "sha256", "created"]
    console.print(table("Versions", columns, rows))
    latest = next((v for v in detail.versions if v.version == detail.latest_version), None)
    if latest is not None:
        marks = [(c.name, c.type, c.missing, c.name == latest.target_suggestion) for c in latest.columns]
        title = f"Columns of version {latest.version}"
        console.print(table(title, ["column", "type", "missing", "suggested target"], marks))


@app.command("preview")
def preview(
    ctx: typer.Context,
    name: str,
    version: VersionOption = "latest",
    offset: Annotated[int, typer.Option(min=0, help="First row to show.")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Rows to show.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Show rows of a dataset version as a table."""
    page = client(ctx).datasets.preview(name, _version_arg(version), offset=offset, limit=limit)
    if as_json:
        print_json(page)
        return
    rows = [[row.get(column) for column in page.columns] for row in page.rows]
    last = page.offset + len(page.rows)
    title = f"{page.dataset} v{page.version}: rows {page.offset + 1}–{last} of {page.total_rows}"
    if not page.rows:
        title = f"{page.dataset} v{page.version}: no rows from {page.offset} (of {page.total_rows})"
    out_console().print(table(title, page.columns, rows))


def _top(values: Any) -> str | None:
    if not isinstance(values, list) or not values:
        return None
    shown = [f"{v.get('value')} ({v.get('count')})" for v in values[:3] if isinstance(v, dict)]
    return ", ".join(shown) + (", …" if len(values) > 3 else "")


@app.command("stats")
def stats(ctx: typer.Context, name: str, version: VersionOption = "latest", as_json: JsonOption = False) -> None:
    """Show column statistics of a dataset version."""
    result = client(ctx).datasets.stats(name, _version_arg(version))
    if as_json:
        print_json(result)
        return
    columns = ["column", "type", "count", "missing", "mean", "std", "min", "max", "unique", "top"]
    rows = [
        [c.get(k) for k in ("name", "type", "count", "missing", "mean", "std", "min", "max", "unique")]
        + [_top(c.get("top"))]
        for c in result.columns
    ]
    exact = "" if result.exact else " (quantiles estimated from a sample)"
    title = f"{result.dataset} v{result.version}: {result.num_rows} rows{exact}"
    out_console().print(table(title, columns, rows))


@app.command("split")
def split(
    ctx: typer.Context,
    name: str,
    train: Annotated[float, typer.Option(help="Fraction for training.")] = 0.7,
    validation: Annotated[float, typer.Option(help="Fraction for validation.")] = 0.15,
    test: Annotated[float, typer.Option(help="Fraction for testing.")] = 0.15,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same split).")] = 0,
    stratify_by: Annotated[str | None, typer.Option(help="Column whose proportions each part keeps.")] = None,
    version: Annotated[int | None, typer.Option("--version", "-v", help="Version (default: the latest).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Split a dataset version into train / validation / test parts."""
    result = client(ctx).datasets.split(
        name, train=train, validation=validation, test=test, seed=seed, stratify_by=stratify_by, version=version
    )
    if as_json:
        print_json(result)
        return
    order = {"train": 0, "validation": 1, "test": 2}
    parts = sorted(result.counts, key=lambda part: (order.get(part, len(order)), part))
    rows = [(part, result.fractions.get(part), result.counts[part]) for part in parts]
    title = f"Split {result.id} of {result.dataset} v{result.version} (seed {result.seed})"
    out_console().print(table(title, ["part", "fraction", "rows"], rows))


@app.command("splits")
def splits(ctx: typer.Context, name: str, version: VersionOption = "latest", as_json: JsonOption = False) -> None:
    """List the splits made of a dataset version."""
    page = client(ctx).datasets.splits(name, _version_arg(version))
    if as_json:
        print_json(page.items)
        return
    rows = [(s.id, s.seed, s.fractions, s.stratify_by, s.counts, s.created_at) for s in page.items]
    columns = ["id", "seed", "fractions", "stratify by", "rows", "created"]
    out_console().print(table("Splits", columns, rows))


@app.command("download")
def download(
    ctx: typer.Context,
    name: str,
    output: Annotated[
        str, typer.Option("--output", "-o", help="File to write, or a folder to write into (ending in '/').")
    ],
    version: VersionOption = "latest",
) -> None:
    """Download the stored file of a dataset version."""
    c = client(ctx)
    with transfer(f"downloading {name}") as progress:
        saved = c.datasets.download(name, _version_arg(version), dest=output, progress=progress)
    out_console().print(f"Saved {saved} ({human_bytes(saved.stat().st_size)})", markup=False)


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a dataset and all its versions."""
    if not yes:
        typer.confirm(f"Delete dataset {name!r} and all its versions?", abort=True, err=True)
    client(ctx).datasets.delete(name)
    out_console().print(f"Deleted dataset {name}", markup=False)
