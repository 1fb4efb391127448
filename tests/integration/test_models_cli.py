"""`aimaas train` and `aimaas models …` against a real `aimaas serve`.

One module-scoped fixture runs `aimaas train` once (a short search on iris, followed live) and the tests reuse
the registered version; a second version comes from importing the downloaded ONNX file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from aimaas.cli.main import app
from aimaas.sdk import Client
from tests.conftest import LiveServer
from tests.integration.test_models_sdk import PNG_MAGIC, run_onnx, write_iris


@dataclass
class Cli:
    server: LiveServer
    config: Path

    def __call__(self, *args: str, input: str | None = None) -> Result:
        env = {
            "AIMAAS_URL": self.server.url,
            "AIMAAS_API_KEY": self.server.admin_key,
            "AIMAAS_CONFIG": str(self.config),
            "COLUMNS": "200",
        }
        return CliRunner().invoke(app, list(args), input=input, env=env)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def refused(result: Result, start: str, *, last: bool = False) -> str:
    """The one red line of a refused command (exit 1, nothing on stdout, no traceback); ``last``: the error is the
    last line (a followed job prints its phases first)."""
    assert result.exit_code == 1, f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.stdout == "" and "Traceback" not in result.output
    # A transfer's progress bar leaves one blank line on a console that is not a terminal (datasets._transfer).
    lines = result.stderr.lstrip("\n").splitlines()
    line = lines[-1] if last else "\n".join(lines)
    assert line.startswith(start), result.stderr
    return line


@dataclass
class Trained:
    name: str
    dataset: str
    csv: Path
    output: Result  # of `aimaas train`


@pytest.fixture(scope="module")
def cli(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return Cli(live_server, tmp_path_factory.mktemp("cfg") / "config.json")


@pytest.fixture(scope="module")
def trained(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    suffix = os.urandom(3).hex()
    name, dataset = f"iris-cli-{suffix}", f"iris-cli-data-{suffix}"
    csv = write_iris(tmp_path_factory.mktemp("iris") / "iris.csv")
    ok(cli("datasets", "upload", str(csv), "--name", dataset))
    output = cli(
        "train", "--dataset", dataset, "--target", "species", "--budget", "2s", "--max-trials", "2", "--model", name
    )
    return Trained(name, dataset, csv, ok(output))


def test_train_follows_the_job_and_prints_the_metrics(trained: Trained) -> None:
    out = trained.output.stdout
    assert f"Trained {trained.name}/1 (classification)" in out and "f1_macro" in out
    assert "Test metrics" in out and "accuracy" in out
    for command in ("card", "plots", "download"):
        assert f"aimaas models {command} {trained.name}/1" in out


def test_list_show_card(cli: Cli, trained: Trained) -> None:
    name = trained.name
    assert name in ok(cli("models", "list")).stdout
    assert name in {m["name"] for m in json.loads(ok(cli("models", "list", "--json")).stdout)}

    shown = ok(cli("models", "show", name)).stdout
    assert "Versions" in shown and "f1_macro" in shown and "classification" in shown
    version = ok(cli("models", "show", f"{name}/1")).stdout
    assert f"Model version {name}/1" in version and "Test metrics" in version and "Hyperparameters" in version
    assert json.loads(ok(cli("models", "show", name, "--json")).stdout)["latest_version"] >= 1
    assert json.loads(ok(cli("models", "show", f"{name}/1", "--json")).stdout)["format"] == "onnx"

    raw = ok(cli("models", "card", f"{name}/1", "--raw")).stdout
    assert raw.startswith("# ") and "f1_macro" in raw
    rendered = ok(cli("models", "card", f"{name}/1")).stdout
    assert "f1_macro" in rendered and "# " not in rendered.splitlines()[0]  # Markdown rendered, not raw


def test_download_plots_import_compare(cli: Cli, trained: Trained, tmp_path: Path) -> None:
    name = trained.name
    saved = ok(cli("models", "download", f"{name}/1", "-o", f"{tmp_path}/model/")).stdout
    model_file = next((tmp_path / "model").iterdir())
    assert f"Saved {model_file}" in saved and model_file.suffix == ".onnx"
    assert run_onnx(model_file, trained.csv) > 0.8
    refused(cli("models", "download", f"{name}/1", "--file", "nope.json", "-o", str(tmp_path)), "error: ")

    listed = ok(cli("models", "plots", f"{name}/1", "-o", str(tmp_path / "plots"))).stdout.split()
    assert str(tmp_path / "plots" / "confusion_matrix.png") in listed
    assert all(Path(p).read_bytes().startswith(PNG_MAGIC) for p in listed)

    imported = ok(cli("models", "import", name, str(model_file), "--description", "again")).stdout
    assert f"Imported {name}/2: onnx" in imported
    other = json.loads(ok(cli("models", "import", f"{name}-copy", str(model_file), "--json")).stdout)
    assert other["ref"] == f"{name}-copy/1"

    compared = ok(cli("models", "compare", f"{name}/1", f"{name}/2")).stdout
    assert f"{name}/1" in compared and f"{name}/2" in compared and "f1_macro" in compared
    assert "not scored on the same test rows" in compared  # version 2 was imported: no test split
    comparison = json.loads(ok(cli("models", "compare", f"{name}/1", f"{name}/2", "--json")).stdout)
    assert [v["ref"] for v in comparison["versions"]] == [f"{name}/1", f"{name}/2"]
    assert comparison["same_test_split"] is False

    ok(cli("models", "delete", f"{name}-copy", "--yes"))
    refused(cli("models", "show", f"{name}-copy"), "error: ")


def test_aliases_archive_restore(cli: Cli, trained: Trained) -> None:
    name = trained.name
    assert f"{name}@prod → version 1" in ok(cli("models", "alias", name, "prod", "1")).stdout
    assert json.loads(ok(cli("models", "show", f"{name}@prod", "--json")).stdout)["version"] == 1
    assert "prod" in ok(cli("models", "show", name)).stdout
    assert f"Removed alias {name}@prod" in ok(cli("models", "alias", name, "prod", "--delete")).stdout
    refused(cli("models", "show", f"{name}@prod"), "error: ")

    assert f"Archived {name}/1" in ok(cli("models", "archive", f"{name}/1")).stdout
    assert json.loads(ok(cli("models", "show", f"{name}/1", "--json")).stdout)["status"] == "archived"
    assert json.loads(ok(cli("models", "restore", f"{name}/1", "--json")).stdout)["status"] == "ready"


def test_bad_input_gives_one_clear_line(cli: Cli, trained: Trained) -> None:
    refused(cli("train", "--dataset", trained.dataset, "--budget", "0"), "error: invalid --budget '0'")
    refused(cli("train", "--dataset", trained.dataset, "--budget", "5 parsecs"), "error: invalid --budget")
    refused(cli("train", "--dataset", "no-such-dataset-xyz", "--target", "y"), "error: ")
    refused(cli("train", "--dataset", trained.dataset, "--target", "nope"), "error: The dataset has no column 'nope'")
    refused(cli("models", "show", "no-such-model-xyz"), "error: ")
    refused(cli("models", "card", "no-such-model-xyz/1"), "error: ")
    refused(cli("models", "show", f"{trained.name}/x"), "error: invalid model reference")
    refused(cli("models", "compare", f"{trained.name}/1"), "error: give 2 to 10 model refs")


def test_a_failed_training_job_is_a_red_error(cli: Cli, trained: Trained) -> None:
    args = ["--dataset", trained.dataset, "--target", "species", "--trainer", "logistic_regression"]
    result = cli("train", *args, "--param", "C=-1", "--model", f"{trained.name}-bad")
    line = refused(result, "error: training job", last=True)
    assert "failed" in line and "'C' parameter" in line
    assert "loading" in result.stderr  # the phases went by, one line each (not a terminal)


def test_ctrl_c_leaves_the_job_running(live_server: LiveServer, trained: Trained) -> None:
    """The real command in a subprocess: SIGINT while following prints how to cancel and exits 130."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMAAS_")}
    env |= {"AIMAAS_URL": live_server.url, "AIMAAS_API_KEY": live_server.admin_key, "COLUMNS": "200"}
    model = f"{trained.name}-interrupted"
    args = ["train", "--dataset", trained.dataset, "--target", "species", "--budget", "10m", "--model", model]
    with Client(live_server.url, live_server.admin_key) as c:
        before = {j.id for j in c.jobs.list(limit=1000).items}
        proc = subprocess.Popen(
            [sys.executable, "-m", "aimaas", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            job_id = None
            deadline = time.monotonic() + 60
            while job_id is None and time.monotonic() < deadline and proc.poll() is None:
                new = [j for j in c.jobs.list(limit=1000).items if j.id not in before and j.kind == "train"]
                job_id = new[0].id if new else None
                time.sleep(0.2)
            assert job_id is not None, proc.communicate(timeout=30)
            time.sleep(0.5)  # let the command reach the event stream
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, err
        assert f"Training job {job_id} keeps running" in err and f"aimaas jobs cancel {job_id}" in err
        assert "Traceback" not in err
        assert c.jobs.get(job_id).state in ("queued", "running")
        c.jobs.cancel(job_id)
        assert c.jobs.wait(job_id, timeout=60).state == "cancelled"
