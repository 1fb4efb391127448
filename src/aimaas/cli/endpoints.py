"""``aimaas deploy``, ``aimaas endpoints …`` and ``aimaas predict``: serve a registered model and query it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from aimaas.cli._common import client, err_console, fail, out_console, print_json, table
from aimaas.cli._endpoint_views import (
    endpoint_view,
    examples,
    predictions_table,
    read_inputs,
    rows_of,
    state_line,
    write_predictions,
)
from aimaas.errors import InvalidInput

if TYPE_CHECKING:
    from aimaas.schemas import EndpointPublic
    from aimaas.sdk import Client

__all__ = ["app", "deploy", "parse_duration", "predict"]

app = typer.Typer(help="Endpoints: list, show, update, delete (deploy with `aimaas deploy`).", no_args_is_help=True)

MAX_DURATION_S = 7 * 24 * 3600
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([dhms]?)")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Endpoint name.")]
MinReplicas = Annotated[int | None, typer.Option(min=0, max=64, help="Replicas kept running; 0 scales to zero.")]
MaxReplicas = Annotated[int | None, typer.Option(min=1, max=64, help="Most replicas under load.")]
MaxBatch = Annotated[int | None, typer.Option(min=1, max=4096, help="Requests served together in one batch.")]
MaxWait = Annotated[float | None, typer.Option(min=0, max=1000, help="Longest wait (ms) for a batch to fill.")]
IdleTimeout = Annotated[
    str | None, typer.Option(help="Time without requests before scaling to min replicas: 90s, 5m, 1h.")
]
TargetOngoing = Annotated[
    int | None, typer.Option(min=1, max=10_000, help="Requests in flight per replica the autoscaler aims for.")
]
Description = Annotated[str | None, typer.Option(help="A description of the endpoint.")]
CanaryRef = Annotated[str | None, typer.Option(help="Send a share of requests to this version: NAME/4, NAME@staging.")]
WaitTimeout = Annotated[str, typer.Option("--timeout", help="How long --wait waits: 90s, 10m, 1h.")]


def parse_duration(text: str, *, option: str = "--idle-timeout", param: str = "idle_timeout_s") -> float:
    """Seconds in a duration: ``90`` or ``90s``, ``5m``, ``1h``, ``1h30m``, ``2d``, ``1.5h``.

    Units go from large to small, each at most once; a number alone is seconds. Raises ``InvalidInput``
    (``param``; the message names ``option``) for anything else, for 0, and for more than 7 days.
    """
    raw = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(raw) if raw else []
    usage = "use seconds (90) or a duration such as 90s, 5m, 1h or 1h30m"
    if not parts or "".join(number + unit for number, unit in parts) != raw:
        raise InvalidInput(f"invalid {option} {text!r}: {usage}", param=param)
    if len(parts) > 1 and any(not unit for _, unit in parts):  # "1h30": minutes or seconds? Say which.
        raise InvalidInput(f"invalid {option} {text!r}: give a unit to every number, e.g. 1h30m", param=param)
    units = [unit or "s" for _, unit in parts]
    ranks = [list(_UNITS).index(unit) for unit in units]
    if ranks != sorted(set(ranks)):
        raise InvalidInput(f"invalid {option} {text!r}: give each unit once, largest first ({usage})", param=param)
    seconds = sum(float(number) * _UNITS[unit] for (number, _), unit in zip(parts, units, strict=True))
    if seconds <= 0:
        raise InvalidInput(f"invalid {option} {text!r}: give more than 0 seconds", param=param)
    if seconds > MAX_DURATION_S:
        raise InvalidInput(f"invalid {option} {text!r}: at most 7 days", param=param)
    return seconds


def _canary(ref: str | None, weight: float | None) -> tuple[str, float] | None:
    if ref is None:
        if weight is not None:
            raise InvalidInput("--canary-weight needs --canary REF (the version that gets that share)", param="canary")
        return None
    return ref, 0.1 if weight is None else weight


def _timeout(text: str) -> float:
    return parse_duration(text, option="--timeout", param="timeout")


def _wait(c: Client, name: str, timeout: str) -> EndpointPublic:
    """Wait until the endpoint can answer, showing its state on a spinner (one line per change off a terminal)."""
    seconds = _timeout(timeout)
    console = err_console()
    last: list[str] = []

    def show(endpoint: EndpointPublic, status: Any = None) -> None:
        line = state_line(endpoint)
        if status is not None:
            status.update(line)
        elif not last or last[-1] != line:
            console.print(line, markup=False)
        last.append(line)

    try:
        if console.is_terminal:
            with console.status(f"deploying {name}…") as spinner:
                return c.endpoints.wait_ready(name, seconds, on_status=lambda e: show(e, spinner))
        return c.endpoints.wait_ready(name, seconds, on_status=show)
    except TimeoutError:
        fail(f"endpoint {name} is not ready after {timeout}; it keeps starting on the server",
             f"watch it with `aimaas endpoints show {name}`")
    except KeyboardInterrupt:
        console.print(f"Stopped waiting; endpoint {name} keeps starting: `aimaas endpoints show {name}`", markup=False)
        raise typer.Exit(130) from None


def _settings(min_replicas: int | None, max_replicas: int | None, max_batch_size: int | None,
              max_wait_ms: float | None, idle_timeout: str | None, target_ongoing_requests: int | None,
              description: str | None) -> dict[str, Any]:
    return {
        "min_replicas": min_replicas,
        "max_replicas": max_replicas,
        "max_batch_size": max_batch_size,
        "max_wait_ms": max_wait_ms,
        "idle_timeout_s": parse_duration(idle_timeout) if idle_timeout is not None else None,
        "target_ongoing_requests": target_ongoing_requests,
        "description": description,
    }


def deploy(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(metavar="MODEL_REF", help="NAME (latest), NAME/3 or NAME@ALIAS.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Endpoint name (lower-case letters, digits, . _ -).")],
    min_replicas: MinReplicas = None,
    max_replicas: MaxReplicas = None,
    max_batch_size: MaxBatch = None,
    max_wait_ms: MaxWait = None,
    idle_timeout: IdleTimeout = None,
    target_ongoing_requests: TargetOngoing = None,
    canary: CanaryRef = None,
    canary_weight: Annotated[float | None, typer.Option(min=0, max=1, help="Share for --canary (0.1).")] = None,
    description: Description = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until it can answer.")] = True,
    timeout: WaitTimeout = "10m",
    as_json: Annotated[bool, typer.Option("--json", help="Print the endpoint as JSON.")] = False,
) -> None:
    """Deploy a registered model as an endpoint, wait until it is ready and show how to call it.

    An alias ref (NAME@prod) is followed: moving the alias redeploys. Settings left out take the server's defaults.
    """
    # Everything a user can get wrong on the command line fails here, before any request.
    settings = _settings(min_replicas, max_replicas, max_batch_size, max_wait_ms, idle_timeout,
                         target_ongoing_requests, description)
    _timeout(timeout)
    c = client(ctx)
    endpoint = c.endpoints.create(name, model, canary=_canary(canary, canary_weight), **settings)
    if wait:
        endpoint = _wait(c, endpoint.name, timeout)
    if as_json:
        print_json(endpoint)
        return
    console = out_console()
    if not wait:
        console.print(f"Deploying {endpoint.name} ({endpoint.model}); follow it with "
                      f"`aimaas endpoints show {endpoint.name}`", markup=False)
        return
    console.print(Text.assemble("Endpoint ", (endpoint.name, "bold"), " is ready: ", state_line(endpoint)))
    console.print(examples(c, endpoint), soft_wrap=True)  # commands stay whole lines, for copy and paste


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the endpoints of your tenant with their live state."""
    found = list(client(ctx).endpoints.iter_all())
    if as_json:
        print_json(found)
        return
    rows = [
        (
            e.name,
            e.model,
            e.status.version,
            e.status.state,
            f"{sum(r.state == 'ready' for r in e.status.replicas)}/{len(e.status.replicas)}",
            f"{e.canary.model} ({e.canary.weight:.0%})" if e.canary else None,
            e.task,
        )
        for e in found
    ]
    columns = ["name", "model", "version", "state", "replicas ready", "canary", "task"]
    out_console().print(table("Endpoints", columns, rows))


@app.command("show")
def show(ctx: typer.Context, name: NameArg, as_json: JsonOption = False) -> None:
    """Show an endpoint: what it serves, its settings, its state and its replicas."""
    endpoint = client(ctx).endpoints.get(name)
    if as_json:
        print_json(endpoint)
        return
    out_console().print(endpoint_view(endpoint))


@app.command("update")
def update(
    ctx: typer.Context,
    name: NameArg,
    model: Annotated[str | None, typer.Option(help="Serve this ref instead: NAME/4, NAME@prod.")] = None,
    min_replicas: MinReplicas = None,
    max_replicas: MaxReplicas = None,
    max_batch_size: MaxBatch = None,
    max_wait_ms: MaxWait = None,
    idle_timeout: IdleTimeout = None,
    target_ongoing_requests: TargetOngoing = None,
    canary: CanaryRef = None,
    canary_weight: Annotated[float | None, typer.Option(min=0, max=1, help="Share for the canary.")] = None,
    no_canary: Annotated[bool, typer.Option("--no-canary", help="Remove the canary.")] = False,
    description: Description = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until it can answer again.")] = False,
    timeout: WaitTimeout = "10m",
    as_json: JsonOption = False,
) -> None:
    """Change what an endpoint serves (--model, --canary, --no-canary) or how (replicas, batching, idle time)."""
    settings = _settings(min_replicas, max_replicas, max_batch_size, max_wait_ms, idle_timeout,
                         target_ongoing_requests, description)
    _timeout(timeout)
    if no_canary and (canary is not None or canary_weight is not None):
        raise InvalidInput("give --canary/--canary-weight or --no-canary, not both", param="canary")
    c = client(ctx)
    spec = None
    if canary is not None:
        spec = _canary(canary, canary_weight)
    elif canary_weight is not None:  # a new share for the canary in place
        current = c.endpoints.get(name).canary
        if current is None:
            raise InvalidInput(f"endpoint {name} has no canary; add one with --canary REF", param="canary")
        spec = (current.model, canary_weight)
    if model is None and spec is None and not no_canary and all(v is None for v in settings.values()):
        raise InvalidInput("nothing to change: give --model, --canary, --no-canary or a setting to update")
    endpoint = c.endpoints.update(name, model=model, canary=spec, clear_canary=no_canary, **settings)
    if wait:
        endpoint = _wait(c, endpoint.name, timeout)
    if as_json:
        print_json(endpoint)
        return
    out_console().print(f"Updated {endpoint.name}: {state_line(endpoint)}", markup=False)


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an endpoint and stop its replicas (the model stays registered)."""
    if not name.strip():
        raise InvalidInput("give the endpoint NAME", param="name")
    if not yes:
        typer.confirm(f"Delete endpoint {name!r}?", abort=True, err=True)
    client(ctx).endpoints.delete(name)
    out_console().print(f"Deleted endpoint {name}", markup=False)


def predict(
    ctx: typer.Context,
    name: NameArg,
    json_rows: Annotated[
        str | None,
        typer.Option("--json", help="Rows as JSON: '[{\"col\": 1}]', {\"col\": [1, 2]}, @FILE.json, or - for stdin."),
    ] = None,
    csv: Annotated[
        Path | None, typer.Option("--csv", exists=True, dir_okay=False, help="Rows from a CSV file.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the rows and predictions: FILE.csv (or FILE.json).")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per request (at most 10000).")] = 1000,
) -> None:
    """Send rows to an endpoint and print a table of predictions (and write them with --output)."""
    if (json_rows is None) == (csv is None):
        raise InvalidInput("give the rows with either --json or --csv", param="inputs")
    rows = rows_of(read_inputs(json_rows, csv))
    c = client(ctx)
    predictions: list[dict[str, Any]] = []
    answer = None
    for start in range(0, len(rows), batch_size):  # a big file goes in several requests, in order
        answer = c.endpoints.predict(name, rows[start : start + batch_size])
        predictions.extend(answer.predictions)
    assert answer is not None  # rows_of refuses no rows
    if len(predictions) != len(rows):
        fail(f"the server answered {len(predictions)} predictions for {len(rows)} rows")
    if output is not None:
        write_predictions(output, rows, predictions, answer)
        err_console().print(f"Wrote {len(rows)} predictions to {output}", markup=False)
    out_console().print(predictions_table(predictions, answer))
