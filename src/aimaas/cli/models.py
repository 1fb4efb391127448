"""``aimaas models …``: the model registry: list, show, compare, alias, card, download, plots, import, archive."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aimaas.cli._common import client, err_console, human_bytes, out_console, print_json, table, transfer
from aimaas.cli._model_views import comparison_table, model_view, version_view
from aimaas.errors import InvalidInput
from aimaas.sdk import split_ref

__all__ = ["app"]

app = typer.Typer(
    help="Registered models: list, show, compare, alias, card, download, plots, import, archive, delete.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
RefArg = Annotated[str, typer.Argument(help="NAME (latest version), NAME/VERSION or NAME@ALIAS.")]


def _names_a_version(ref: str) -> bool:
    return "/" in ref or "@" in ref


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the registered models of your tenant."""
    found = list(client(ctx).models.iter_all())
    if as_json:
        print_json(found)
        return
    rows = [
        (m.name, m.latest_version, ", ".join(f"{a} → {v}" for a, v in sorted(m.aliases.items())) or None, m.description)
        for m in found
    ]
    out_console().print(table("Models", ["name", "latest version", "aliases", "description"], rows))


@app.command("show")
def show(ctx: typer.Context, ref: RefArg, as_json: JsonOption = False) -> None:
    """Show a model (NAME: its versions, metrics and aliases) or one version (NAME/3, NAME@prod) in detail."""
    c = client(ctx)
    if _names_a_version(ref):
        version = c.models.version(ref)
        if as_json:
            print_json(version)
            return
        out_console().print(version_view(version))
        return
    detail = c.models.get(ref)
    if as_json:
        print_json(detail)
        return
    out_console().print(model_view(detail))


@app.command("compare")
def compare(
    ctx: typer.Context,
    refs: Annotated[list[str], typer.Argument(help="2 to 10 refs: NAME/1 NAME/2 NAME@prod …")],
    as_json: JsonOption = False,
) -> None:
    """Compare versions: their test metrics side by side, the best of each row highlighted."""
    if not 2 <= len(refs) <= 10:
        raise InvalidInput(f"give 2 to 10 model refs to compare (got {len(refs)})", param="refs")
    comparison = client(ctx).models.compare(refs)
    if as_json:
        print_json(comparison)
        return
    out_console().print(comparison_table(comparison))


@app.command("alias")
def alias(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="Alias, e.g. prod or staging.")],
    version: Annotated[int | None, typer.Argument(min=1, help="Version the alias points at.")] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias instead.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Point ALIAS at VERSION of model NAME (creating or moving it), or remove it with --delete."""
    c = client(ctx)
    if delete:
        if version is not None:
            raise InvalidInput("give no VERSION with --delete", param="version")
        c.models.delete_alias(name, alias_name)
        out_console().print(f"Removed alias {name}@{alias_name}", markup=False)
        return
    if version is None:
        raise InvalidInput(f"give the VERSION for {name}@{alias_name}, or --delete to remove it", param="version")
    model = c.models.set_alias(name, alias_name, version)
    if as_json:
        print_json(model)
        return
    out_console().print(f"{name}@{alias_name} → version {model.aliases.get(alias_name, version)}", markup=False)


@app.command("card")
def card(
    ctx: typer.Context,
    ref: RefArg,
    raw: Annotated[bool, typer.Option("--raw", help="Print the Markdown source.")] = False,
) -> None:
    """Show a version's model card."""
    text = client(ctx).models.card(ref)
    if raw:
        typer.echo(text)
        return
    from rich.markdown import Markdown

    out_console().print(Markdown(text))


@app.command("download")
def download(
    ctx: typer.Context,
    ref: RefArg,
    output: Annotated[
        str, typer.Option("--output", "-o", help="File to write, or a folder to write into (named by the server).")
    ] = ".",
    file: Annotated[str | None, typer.Option(help="One of the version's other files instead of the model.")] = None,
) -> None:
    """Download a version's model file (ONNX, GGUF, safetensors archive) or one of its other files."""
    c = client(ctx)
    with transfer(f"downloading {ref}") as progress:
        saved = c.models.download(ref, output, file=file, progress=progress)
    out_console().print(f"Saved {saved} ({human_bytes(saved.stat().st_size)})", markup=False)


@app.command("plots")
def plots(
    ctx: typer.Context,
    ref: RefArg,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Folder (default: NAME-vN-plots).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Save every plot of a version (confusion matrix, curves, importances…) as PNG files; prints the paths."""
    c = client(ctx)
    version = c.models.version(ref)
    folder = output or Path(f"{version.model}-v{version.version}-plots")
    # Name the version by number: an alias could move to another version between two downloads.
    exact = f"{version.model}/{version.version}"
    saved = [c.models.plot(exact, plot, folder / f"{Path(plot).name}.png") for plot in version.plots]
    if as_json:
        print_json({"ref": version.ref, "plots": [str(p) for p in saved]})
        return
    if not saved:
        err_console().print(f"{version.ref} has no plots", markup=False)
    for path in saved:
        out_console().print(str(path), markup=False)


@app.command("import")
def import_(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name (created when new).")],
    path: Annotated[
        Path, typer.Argument(exists=True, readable=True, help=".onnx or .gguf file, or a Hugging Face model folder.")
    ],
    task: Annotated[str | None, typer.Option(help="What the model does, e.g. classification, embedding.")] = None,
    description: Annotated[str | None, typer.Option(help="A description of the model.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Register an existing model as a new version: an ONNX or GGUF file, or a folder of safetensors weights."""
    c = client(ctx)
    with transfer(f"uploading {path.name}", f"checking {path.name}") as progress:
        version = c.models.import_file(name, path, task=task, description=description, progress=progress)
    if as_json:
        print_json(version)
        return
    out_console().print(
        f"Imported {version.ref}: {version.format}, {version.task}, {human_bytes(version.size_bytes)}", markup=False
    )


def _set_status(ctx: typer.Context, ref: str, status: str, verb: str, as_json: bool) -> None:
    version = client(ctx).models.set_status(ref, "archived" if status == "archived" else "ready")
    if as_json:
        print_json(version)
        return
    out_console().print(f"{verb} {version.ref}", markup=False)


@app.command("archive")
def archive(ctx: typer.Context, ref: RefArg, as_json: JsonOption = False) -> None:
    """Mark a version archived (it stays stored and downloadable; `aimaas models restore` undoes it)."""
    _set_status(ctx, ref, "archived", "Archived", as_json)


@app.command("restore")
def restore(ctx: typer.Context, ref: RefArg, as_json: JsonOption = False) -> None:
    """Restore an archived version (status ready)."""
    _set_status(ctx, ref, "ready", "Restored", as_json)


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a model with all its versions."""
    split_ref(name)  # an empty or malformed name fails before the question
    if _names_a_version(name):
        raise InvalidInput(f"give a model NAME, not a version ({name}); versions are archived, not deleted")
    if not yes:
        typer.confirm(f"Delete model {name!r} and all its versions?", abort=True, err=True)
    client(ctx).models.delete(name)
    out_console().print(f"Deleted model {name}", markup=False)
