"""What every command shares: the client from the global options, error lines, tables, JSON output."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console, Group, RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from aimaas.errors import AimaasError, Forbidden, Unauthorized

if TYPE_CHECKING:
    from pydantic import BaseModel

    from aimaas.sdk import Client, ProgressCallback

__all__ = [
    "transfer",
    "AimaasGroup",
    "State",
    "cell",
    "client",
    "err_console",
    "fail",
    "human_bytes",
    "out_console",
    "print_json",
    "table",
]


@dataclass
class State:
    """The global options (``--url``, ``--api-key``), kept on the root context."""

    url: str | None = None
    api_key: str | None = None


def out_console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def client(ctx: typer.Context) -> Client:
    """An SDK client for this invocation, closed when the command ends."""
    from aimaas.sdk import Client

    state = ctx.find_object(State) or State()
    return ctx.with_resource(Client(state.url, state.api_key))


def _hint(error: AimaasError) -> str | None:
    if isinstance(error, Unauthorized):
        return "pass --api-key, set AIMAAS_API_KEY, or run `aimaas login`"
    if isinstance(error, Forbidden):
        return "use a key with the needed scope (an admin can run `aimaas keys create --scope ...`)"
    status = getattr(error, "status_code", None)
    request_id = getattr(error, "request_id", None)
    if request_id and (status is None or status >= 500):
        return f"request id {request_id} (quote it when reporting the problem)"
    return None


def fail(message: str, hint: str | None = None, code: int = 1) -> NoReturn:
    """Print ``error: <message>`` (and a hint) in red on stderr and exit non-zero."""
    console = err_console()
    console.print(Text.assemble(("error: ", "bold red"), (message, "red")))
    if hint:
        console.print(Text.assemble(("hint: ", "yellow"), hint))
    raise typer.Exit(code)


class AimaasGroup(TyperGroup):
    """Root command group: turns platform and file errors into one red line instead of a traceback."""

    def invoke(self, ctx: Any) -> Any:  # a click Context (typer may vendor click, so no import)
        try:
            return super().invoke(ctx)
        except AimaasError as error:
            message = error.message
            if error.param and error.param not in message:
                message = f"{message} (param: {error.param})"
            fail(message, _hint(error))
        except OSError as error:
            fail(str(error))


def print_json(data: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> None:
    """Machine-readable output on stdout (for ``--json``)."""
    if isinstance(data, dict):
        payload: Any = data
    elif isinstance(data, Sequence):
        payload = [item.model_dump(mode="json") for item in data]
    else:
        payload = data.model_dump(mode="json")
    typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))


def cell(value: object) -> Text:
    """A table cell shown literally (never parsed as Rich markup)."""
    if value is None:
        return Text("–", style="dim")
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, float):
        return Text(f"{value:.6g}")
    if isinstance(value, datetime):
        return Text(value.strftime("%Y-%m-%d %H:%M:%S"))
    if isinstance(value, list | tuple):
        return Text(", ".join(str(v) for v in value))
    if isinstance(value, dict):
        return Text(json.dumps(value, ensure_ascii=False, default=str))
    return Text(str(value))


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> RenderableType:
    """A Rich table of literal cells, under a bold title line."""
    result = Table(header_style="bold")
    for name in columns:
        result.add_column(name, overflow="fold")
    for row in rows:
        result.add_row(*(cell(v) for v in row))
    return Group(Text(title, style="bold"), result) if title else result


def human_bytes(size: float) -> str:
    """``1234567`` → ``1.2 MB`` (decimal units, like the progress bars)."""
    unit = "B"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            break
        size /= 1000
    return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"


@contextmanager
def transfer(description: str, when_done: str | None = None) -> Iterator[ProgressCallback]:
    """A Rich progress bar (bytes, MB/s, time left) on stderr, fed by an SDK progress callback (nothing is
    drawn when stderr is not a terminal, so logs and captured output stay clean)."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console(), transient=True,
                  disable=not err_console().is_terminal) as bar:
        task: TaskID = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)
            if when_done and total and done >= total:
                bar.update(task, description=when_done)  # e.g. the server now checks the file

        yield update
