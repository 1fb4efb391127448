"""``aimaas train``: train (and tune) a model on a dataset and follow the job live until it is registered."""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from aimaas.cli._common import client, err_console, fail, out_console, print_json, table
from aimaas.errors import InvalidInput, ServiceUnavailable

if TYPE_CHECKING:
    from types import TracebackType

    from aimaas.schemas import JobEventPublic, JobPublic
    from aimaas.sdk import Client

__all__ = ["TrainingProgress", "parse_budget", "parse_params", "train"]

TASKS = ("auto", "classification", "regression", "text", "image", "clustering")
MAX_BUDGET_S = 7 * 24 * 3600  # the server's limit (TrainCreate.budget_s)
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)([dhms]?)")
_RECONNECTS = 3  # how often a dropped event stream is picked up again where it stopped


def parse_budget(text: str) -> float:
    """Seconds in a duration: ``90`` or ``90s``, ``5m``, ``1h``, ``1h30m``, ``2d``, ``1.5h``.

    Units go from large to small, each at most once; a number alone is seconds. Raises
    ``InvalidInput`` (param ``budget``) for anything else, for 0, and for more than 7 days.
    """
    raw = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(raw) if raw else []
    usage = "use seconds (90) or a duration such as 90s, 5m, 1h or 1h30m"
    if not parts or "".join(number + unit for number, unit in parts) != raw:
        raise InvalidInput(f"invalid --budget {text!r}: {usage}", param="budget")
    if len(parts) > 1 and any(not unit for _, unit in parts):  # "1h30": minutes or seconds? Say which.
        raise InvalidInput(f"invalid --budget {text!r}: give a unit to every number, e.g. 1h30m", param="budget")
    order = [unit or "s" for _, unit in parts]
    ranks = [list(_UNITS).index(unit) for unit in order]
    if ranks != sorted(set(ranks)):
        raise InvalidInput(f"invalid --budget {text!r}: give each unit once, largest first ({usage})", param="budget")
    seconds = sum(float(number) * _UNITS[unit] for number, unit in zip((n for n, _ in parts), order, strict=True))
    if seconds <= 0:
        raise InvalidInput(f"invalid --budget {text!r}: the budget must be more than 0 seconds", param="budget")
    if seconds > MAX_BUDGET_S:
        raise InvalidInput(f"invalid --budget {text!r}: the budget can be at most 7 days", param="budget")
    return seconds


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """``["n_estimators=200", "solver=lbfgs", "hidden=[64, 32]"]`` → a dict; values are read as JSON when
    they parse (numbers, true/false/null, lists, objects, quoted strings), else kept as text.

    Raises ``InvalidInput`` (param ``param``) for an item without ``=``, an empty key, or a key given twice.
    """
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInput(
                f"invalid --param {item!r}: write KEY=VALUE, e.g. --param n_estimators=200", param="param"
            )
        if key in params:
            raise InvalidInput(f"--param {key} is given twice; keep one", param="param")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


class TrainingProgress:
    """A live line on the console for a training job, fed its events one by one with :meth:`handle`.

    It shows the percent done, the phase (loading, searching, training, refitting, evaluating, exporting,
    registering), the trials done and the best score so far, or the epoch and loss of a neural trainer.
    Warnings and errors the job logs are printed above the line. On a console that is not a terminal (CI logs,
    a pipe) a live line cannot redraw, so each new phase is printed as one plain line instead. The state is
    readable for tests.
    """

    def __init__(self, console: Console, *, enabled: bool = True) -> None:
        self.console = console
        self.percent = 0.0
        self.phase = "queued"
        self.trials: set[int] = set()
        self.best: tuple[str, float] | None = None
        self.epoch: str | None = None
        self._lines = enabled and not console.is_terminal
        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<12}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[trials]}"),
            TextColumn("{task.fields[best]}", style="bold green"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not enabled or self._lines,
        )
        self._task = self._bar.add_task(self.phase, total=100, trials="", best="")

    def __enter__(self) -> TrainingProgress:
        self._bar.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bar.stop()

    def handle(self, event: JobEventPublic) -> None:
        """Take one job event into account and redraw the line."""
        p = event.payload
        if event.type == "progress":
            self.percent = max(0.0, min(100.0, float(p.get("progress") or 0)))
        elif event.type == "state":
            self.phase = str(p.get("state") or self.phase)
        elif event.type == "log":
            phase = (p.get("fields") or {}).get("phase")
            if phase and phase != self.phase:
                self.phase = str(phase)
                if self._lines:
                    extra = ", ".join(x for x in (self.trials_text(), self.best_text()) if x)
                    line = f"{self.percent:3.0f}% {self.phase}{' (' + extra + ')' if extra else ''}"
                    self.console.print(line, markup=False)
            if str(p.get("level", "info")).lower() in ("warning", "error", "critical"):
                self._bar.console.print(f"{str(p.get('level')).lower()}: {p.get('message', '')}", markup=False)
        elif event.type == "metric":
            self._metric(str(p.get("name")), p.get("value"), p.get("step"), p.get("labels") or {})
        self._bar.update(
            self._task, completed=self.percent, description=self.phase, trials=self.trials_text(), best=self.best_text()
        )

    def _metric(self, name: str, value: Any, step: Any, labels: dict[str, Any]) -> None:
        if not isinstance(value, int | float):
            return
        if name == "trial_score" and isinstance(step, int):
            self.trials.add(step)
        elif name == "best_score":
            self.best = (str(labels.get("metric") or "score"), float(value))
        elif name in ("loss", "valid_score") and isinstance(step, int):
            self.epoch = f"epoch {step} {name.replace('_score', '')} {value:.4g}"

    def trials_text(self) -> str:
        if self.trials:
            return f"{len(self.trials)} trial{'s' if len(self.trials) != 1 else ''}"
        return self.epoch or ""

    def best_text(self) -> str:
        return f"best {self.best[0]} {self.best[1]:.4g}" if self.best else ""


def _follow(c: Client, job: JobPublic, show_progress: bool) -> JobPublic:
    """Show the job's events as a live progress line until it ends; return the ended job."""
    progress = TrainingProgress(err_console(), enabled=show_progress)
    after, drops = 0, 0
    with progress:
        while True:
            try:
                for event in c.jobs.stream(job.id, after_seq=after):
                    after = event.seq
                    progress.handle(event)
                break
            except ServiceUnavailable:
                # A dropped stream (server restart, proxy timeout) resumes after the last event it gave.
                drops += 1
                if drops > _RECONNECTS:
                    raise
                time.sleep(drops)
    # The stream ends with the job; a job still running here means the server closed it early.
    return c.jobs.wait(job.id)


def _print_result(job: JobPublic) -> None:
    result = job.result or {}
    ref = str(result.get("ref") or f"{result.get('model')}/{result.get('version')}")
    metric, score = result.get("metric"), result.get("score")
    console = out_console()
    line = Text.assemble("Trained ", (ref, "bold"), f" ({result.get('task', '?')})")
    if result.get("trainer"):
        line.append(f" with {result['trainer']}")
    if isinstance(score, int | float) and metric:
        line.append(f": {metric} {score:.4g} on the test split")
    if result.get("trials"):
        line.append(f" after {result['trials']} trials")
    console.print(line)
    metrics = result.get("metrics") or {}
    if metrics:
        rows = [(name, value) for name, value in metrics.items() if not isinstance(value, dict | list)]
        console.print(table("Test metrics", ["metric", "value"], rows))
    parity = result.get("parity")
    if isinstance(parity, dict) and parity:
        console.print("ONNX parity: " + ", ".join(f"{k}={v}" for k, v in parity.items()), markup=False)
    console.print(Text("Next:", style="bold"))
    for command in (
        f"aimaas models show {ref}",
        f"aimaas models card {ref}",
        f"aimaas models plots {ref} -o plots/",
        f"aimaas models download {ref} -o .",
    ):
        console.print(f"  {command}", markup=False)


def train(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset to train on.")],
    target: Annotated[str | None, typer.Option(help="Column to predict (not for clustering).")] = None,
    task: Annotated[str, typer.Option(help=f"{', '.join(TASKS)}; auto decides from the data.")] = "auto",
    budget: Annotated[
        str | None, typer.Option(help="Search time: 90, 90s, 5m, 1h, 1h30m (default: the server's).")
    ] = None,
    metric: Annotated[str | None, typer.Option(help="Metric to optimise, e.g. f1_macro, accuracy, r2, rmse.")] = None,
    max_trials: Annotated[int | None, typer.Option(min=1, help="Stop the search after this many trials.")] = None,
    trainer: Annotated[
        str | None, typer.Option(help="Train this trainer only (with --param), instead of searching.")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="KEY=VALUE hyperparameter (JSON value); repeatable.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Register under this model name (default: from the dataset).")
    ] = None,
    version: Annotated[int | None, typer.Option("--version", min=1, help="Dataset version (default: latest).")] = None,
    parallel_trials: Annotated[int, typer.Option(min=1, max=16, help="Trials run at once.")] = 1,
    seed: Annotated[int, typer.Option(min=0, help="Random seed (split, search, training).")] = 0,
    text_column: Annotated[str | None, typer.Option(help="The text column (task text).")] = None,
    no_follow: Annotated[bool, typer.Option("--no-follow", help="Queue the job and return at once.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the final job as JSON.")] = False,
) -> None:
    """Train a model on a dataset (searching trainers and hyperparameters) and register it.

    Shows percent, phase, trials and best score live, then the test metrics. Ctrl-C stops following only.
    """
    # Everything a user can get wrong on the command line fails here, before any request.
    if task not in TASKS:
        raise InvalidInput(f"invalid --task {task!r}: use one of {', '.join(TASKS)}", param="task")
    budget_s = parse_budget(budget) if budget is not None else None
    params = parse_params(param)
    c = client(ctx)
    job = c.train(
        dataset,
        target,
        task=task,
        budget_s=budget_s,
        max_trials=max_trials,
        metric=metric,
        trainer=trainer,
        params=params or None,
        model=model,
        dataset_version=version,
        seed=seed,
        text_column=text_column,
        parallel_trials=parallel_trials,
    )
    if no_follow:
        if as_json:
            print_json(job)
            return
        out_console().print(f"Queued training job {job.id}", markup=False)
        err_console().print(f"Follow it with: aimaas jobs logs {job.id} --follow", markup=False)
        return
    try:
        ended = _follow(c, job, show_progress=not as_json)
    except KeyboardInterrupt:
        err_console().print(
            f"Stopped following. Training job {job.id} keeps running on the server: "
            f"`aimaas jobs logs {job.id} --follow` to watch it again, `aimaas jobs cancel {job.id}` to cancel it.",
            markup=False,
        )
        raise typer.Exit(130) from None
    if as_json:
        print_json(ended)
    if ended.state == "failed":
        fail(f"training job {ended.id} failed: {ended.error or 'no reason given'}")
    if ended.state == "cancelled":
        fail(f"training job {ended.id} was cancelled{': ' + ended.error if ended.error else ''}")
    if not as_json:
        _print_result(ended)
