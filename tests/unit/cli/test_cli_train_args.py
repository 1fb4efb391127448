"""``aimaas train`` and ``aimaas models`` without a server: argument parsing, the progress state, early errors."""

from __future__ import annotations

import io
import socket

import pytest
from rich.console import Console
from typer.testing import CliRunner

from aimaas.cli._model_views import comparison_table, higher_is_better
from aimaas.cli.main import app
from aimaas.cli.train import TrainingProgress, parse_budget, parse_params
from aimaas.errors import InvalidInput
from aimaas.schemas import JobEventPublic, ModelComparison

runner = CliRunner()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        (" 5m ", 300),
        ("1h", 3600),
        ("1h30m", 5400),
        ("1H30M", 5400),
        ("2m30s", 150),
        ("1.5h", 5400),
        ("0.5", 0.5),
        ("1d", 86400),
        ("7d", 7 * 86400),
    ],
)
def test_parse_budget(text: str, seconds: float) -> None:
    assert parse_budget(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "more than 0"),
        ("0m", "more than 0"),
        ("", "use seconds"),
        ("abc", "use seconds"),
        ("5x", "use seconds"),
        ("-5", "use seconds"),
        ("5 minutes", "use seconds"),
        ("1h30", "give a unit to every number"),
        ("30m1h", "largest first"),
        ("1m1m", "largest first"),
        ("8d", "at most 7 days"),
    ],
)
def test_parse_budget_refuses(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        parse_budget(text)
    assert caught.value.param == "budget" and "--budget" in caught.value.message


def test_parse_params_reads_json_values_and_keeps_text() -> None:
    items = ["n_estimators=200", "lr=0.1", "solver=lbfgs", "hidden=[64, 32]", "fit_intercept=false", "x=", "q=a=b"]
    assert parse_params(items) == {
        "n_estimators": 200,
        "lr": 0.1,
        "solver": "lbfgs",
        "hidden": [64, 32],
        "fit_intercept": False,
        "x": "",
        "q": "a=b",
    }
    assert parse_params(None) == {} and parse_params(['name="42"']) == {"name": "42"}


@pytest.mark.parametrize(
    ("items", "message"),
    [(["n_estimators"], "write KEY=VALUE"), (["=3"], "write KEY=VALUE"), (["a=1", "a=2"], "given twice")],
)
def test_parse_params_refuses(items: list[str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_params(items)


def event(seq: int, type_: str, **payload: object) -> JobEventPublic:
    return JobEventPublic(job_id="j", seq=seq, time="2024-01-01T00:00:00Z", type=type_, payload=payload)  # type: ignore[arg-type]


def test_training_progress_tracks_percent_phase_trials_and_best_score() -> None:
    out = io.StringIO()
    progress = TrainingProgress(Console(file=out, force_terminal=False), enabled=True)
    with progress:
        for e in [
            event(1, "state", state="running"),
            event(2, "log", level="info", message="loading", fields={"phase": "loading"}),
            event(3, "progress", progress=10),
            event(4, "log", level="info", message="search", fields={"phase": "searching"}),
            event(5, "metric", name="trial_score", value=0.91, step=0, labels={"trainer": "lr", "state": "complete"}),
            event(6, "metric", name="best_score", value=0.91, step=0, labels={"metric": "f1_macro"}),
            event(7, "metric", name="trial_score", value=0.88, step=1, labels={"trainer": "lgbm", "state": "pruned"}),
            event(8, "metric", name="trial_score", value=0.88, step=1, labels={"trainer": "lgbm", "state": "pruned"}),
            event(9, "log", level="warning", message="few rows for 5 folds"),
            event(10, "progress", progress=55.5),
        ]:
            progress.handle(e)
    assert progress.percent == 55.5 and progress.phase == "searching"
    assert progress.trials_text() == "2 trials" and progress.best_text() == "best f1_macro 0.91"
    # Not a terminal: no live line, but one plain line per phase (for CI logs).
    assert out.getvalue().splitlines() == ["  0% loading", " 10% searching", "warning: few rows for 5 folds"]


def test_training_progress_draws_a_live_line_on_a_terminal() -> None:
    out = io.StringIO()
    progress = TrainingProgress(Console(file=out, force_terminal=True, width=150), enabled=True)
    with progress:
        progress.handle(event(1, "log", level="info", message="search", fields={"phase": "searching"}))
        progress.handle(event(2, "metric", name="best_score", value=0.5, step=0, labels={"metric": "r2"}))
        progress.handle(event(3, "progress", progress=40))
        progress._bar.refresh()
    assert "searching" in out.getvalue() and "best r2 0.5" in out.getvalue() and "40%" in out.getvalue()


def test_training_progress_shows_epochs_of_a_neural_trainer() -> None:
    progress = TrainingProgress(Console(file=io.StringIO()), enabled=False)
    progress.handle(event(1, "metric", name="loss", value=0.4321, step=3))
    assert progress.trials_text() == "epoch 3 loss 0.4321" and progress.best_text() == ""
    progress.handle(event(2, "metric", name="valid_score", value=0.9, step=3))
    assert progress.trials_text() == "epoch 3 valid 0.9"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--dataset", "iris", "--budget", "0"], "error: invalid --budget '0': the budget must be more"),
        (["train", "--dataset", "iris", "--budget", "soon"], "error: invalid --budget 'soon'"),
        (["train", "--dataset", "iris", "--task", "magic"], "error: invalid --task 'magic'"),
        (["train", "--dataset", "iris", "--param", "depth"], "error: invalid --param 'depth'"),
        (["models", "compare", "iris/1"], "error: give 2 to 10 model refs to compare (got 1)"),
        (["models", "show", "iris/x"], "error: invalid model reference 'iris/x'"),
        (["models", "delete", "iris/2", "--yes"], "error: give a model NAME, not a version"),
        (["models", "alias", "iris", "prod"], "error: give the VERSION for iris@prod"),
    ],
)
def test_bad_arguments_fail_in_one_line_before_any_request(args: list[str], message: str) -> None:
    # The URL points at a closed port: reaching the network would print "cannot reach" instead.
    result = runner.invoke(app, ["--url", closed_port_url(), "--api-key", "k", *args])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


@pytest.mark.parametrize("args", [["train"], ["models"], ["models", "import"], ["models", "compare"]])
def test_help(args: list[str]) -> None:
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_metric_direction_and_the_comparison_highlight() -> None:
    assert higher_is_better("f1_macro") and higher_is_better("r2") and higher_is_better("silhouette")
    assert not higher_is_better("rmse") and not higher_is_better("log_loss") and not higher_is_better("fit_time_s")
    version = {
        "model": "m",
        "status": "ready",
        "task": "regression",
        "format": "onnx",
        "sha256": "0",
        "size_bytes": 1,
        "created_at": "2024-01-01T00:00:00Z",
    }
    comparison = ModelComparison(
        versions=[version | {"version": 1, "ref": "m/1"}, version | {"version": 2, "ref": "m/2"}],  # type: ignore[list-item]
        metrics={"r2": [0.5, 0.75], "rmse": [1.25, 2.5], "mae": [None, 1.0]},
        same_test_split=False,
        notes=["m/1 was scored on dataset version 1"],
    )
    console = Console(file=io.StringIO(), force_terminal=True, width=120, color_system="standard")
    console.print(comparison_table(comparison))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    bold_green = "\x1b[1;32m"
    assert f"{bold_green}0.75" in text and f"{bold_green}1.25" in text
    assert f"{bold_green}0.5\x1b" not in text and f"{bold_green}1\x1b" not in text  # a lone value is not "best"
    assert "not scored on the same test rows" in text and "m/1 was scored on dataset version 1" in text
