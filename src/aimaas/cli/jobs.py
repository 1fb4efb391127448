"""``aimaas jobs …``: list, show, follow the logs of, and cancel jobs."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from aimaas.cli._common import client, out_console, print_json, table
from aimaas.schemas import JobEventPublic, JobPublic

__all__ = ["app", "format_event"]

app = typer.Typer(help="Jobs: list, show, logs, cancel.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
STATES = ("queued", "running", "succeeded", "failed", "cancelled")


def format_event(event: JobEventPublic) -> str:
    """One readable line for an event: ``time  level  message`` for logs, ``name=value`` for metrics…"""
    when = event.time.strftime("%H:%M:%S")
    p = event.payload
    if event.type == "log":
        fields = p.get("fields") or {}
        extra = " ".join(f"{k}={json.dumps(v)}" for k, v in fields.items())
        return f"{when} {str(p.get('level', 'info')).upper():<7} {p.get('message', '')}{' ' + extra if extra else ''}"
    if event.type == "metric":
        step = "" if p.get("step") is None else f" step={p['step']}"
        labels = "".join(f" {k}={v}" for k, v in (p.get("labels") or {}).items())
        return f"{when} METRIC  {p.get('name')}={p.get('value')}{step}{labels}"
    if event.type == "progress":
        return f"{when} PROGRESS {float(p.get('progress', 0)):.0f}%"
    reason = f": {p['reason']}" if p.get("reason") else ""
    return f"{when} STATE   {p.get('state')}{reason}"


def _summary(job: JobPublic) -> list[tuple[str, object]]:
    return [
        ("id", job.id),
        ("kind", job.kind),
        ("entrypoint", job.entrypoint),
        ("state", job.state),
        ("progress", f"{job.progress:.0f}%"),
        ("priority", job.priority),
        ("created", job.created_at),
        ("started", job.started_at),
        ("finished", job.finished_at),
        ("error", job.error),
        ("resume from", job.resume_from),
        ("result", json.dumps(job.result) if job.result is not None else None),
    ]


@app.command("list")
def list_(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help=f"Only jobs in this state ({', '.join(STATES)}).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many jobs.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """List the jobs of your tenant."""
    page = client(ctx).jobs.list(state=state, limit=limit)
    if as_json:
        print_json(page.items)
        return
    rows = [(j.id, j.kind, j.state, f"{j.progress:.0f}%", j.created_at, j.error) for j in page.items]
    out_console().print(table("Jobs", ["id", "kind", "state", "progress", "created", "error"], rows))


@app.command("show")
def show(ctx: typer.Context, job_id: str, as_json: JsonOption = False) -> None:
    """Show one job: its state, progress, error and result."""
    job = client(ctx).jobs.get(job_id)
    if as_json:
        print_json(job)
        return
    out_console().print(table(f"Job {job.id}", ["field", "value"], [r for r in _summary(job) if r[1] is not None]))


@app.command("logs")
def logs(
    ctx: typer.Context,
    job_id: str,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events until the job ends.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Print a job's events (logs, metrics, progress, state changes); ``--follow`` streams them live."""
    c = client(ctx)
    console = out_console()

    def emit(event: JobEventPublic) -> None:
        if as_json:
            typer.echo(event.model_dump_json())
        else:
            console.print(format_event(event), markup=False, highlight=False)

    if follow:
        for event in c.jobs.stream(job_id):
            emit(event)
        return
    after: int | None = 0
    while after is not None:
        page = c.jobs.events(job_id, after_seq=after)
        for event in page.items:
            emit(event)
        after = page.next_after_seq


@app.command("cancel")
def cancel(ctx: typer.Context, job_id: str, as_json: JsonOption = False) -> None:
    """Cancel a job: a queued one ends at once, a running one within seconds."""
    job = client(ctx).jobs.cancel(job_id)
    if as_json:
        print_json(job)
        return
    what = "Cancel requested" if job.state == "running" else f"Job is {job.state}"
    out_console().print(f"{what}: {job.id}", markup=False)


@app.command("retry")
def retry(ctx: typer.Context, job_id: str, as_json: JsonOption = False) -> None:
    """Run an ended job again as a new job resuming from its checkpoint (training continues from its last epoch)."""
    job = client(ctx).jobs.retry(job_id)
    if as_json:
        print_json(job)
        return
    out_console().print(f"Queued {job.id} (resuming from {job_id}); follow it with: aimaas jobs logs {job.id} --follow",
                        markup=False)
