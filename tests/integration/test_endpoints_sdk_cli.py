"""Endpoints and predictions through the SDK and the CLI against a real `aimaas serve`.

One module-scoped fixture trains a logistic regression on iris (a few seconds) and every test deploys it under
its own endpoint name: deploy, wait, predict (rows, columns, a DataFrame, a CSV file), list, show, update,
delete, and the errors a user meets (unknown endpoint, rows the model cannot read, a taken name).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from aimaas import errors
from aimaas.cli.main import app
from aimaas.sdk import AsyncClient, Client
from tests.conftest import LiveServer
from tests.integration.test_models_sdk import write_iris

FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
SETOSA = dict(zip(FEATURES, [5.1, 3.5, 1.4, 0.2], strict=True))
VIRGINICA = dict(zip(FEATURES, [6.9, 3.1, 5.8, 2.2], strict=True))


@dataclass
class Model:
    name: str
    csv: Path
    server: LiveServer
    config: Path

    def client(self) -> Client:
        return Client(self.server.url, self.server.admin_key)

    def cli(self, *args: str, input: str | None = None) -> Result:
        env = {"AIMAAS_URL": self.server.url, "AIMAAS_API_KEY": self.server.admin_key,
               "AIMAAS_CONFIG": str(self.config), "COLUMNS": "200"}
        return CliRunner().invoke(app, list(args), input=input, env=env)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def refused(result: Result) -> str:
    assert result.exit_code == 1, f"exit {result.exit_code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "Traceback" not in result.output
    return result.stderr.strip()


@pytest.fixture(scope="module")
def model(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Model:
    folder = tmp_path_factory.mktemp("endpoints")
    name = f"iris-ep-{os.urandom(3).hex()}"
    csv_path = write_iris(folder / "iris.csv")
    with Client(live_server.url, live_server.admin_key) as c:
        c.datasets.upload(csv_path, name=name)
        job = c.jobs.wait(c.train(name, "species", trainer="logistic_regression", model=name).id, timeout=180)
    assert job.state == "succeeded", job.error
    return Model(name, csv_path, live_server, folder / "client.json")


def unique(prefix: str) -> str:
    return f"{prefix}-{os.urandom(3).hex()}"


# -- SDK ---------------------------------------------------------------------------------------------------
def test_sdk_deploy_predict_update_delete(model: Model) -> None:
    import pandas as pd

    name = unique("sdk")
    with model.client() as c:
        created = c.deploy(name, f"{model.name}/1", max_batch_size=32, description="iris for tests")
        assert (created.name, created.model, created.max_batch_size) == (name, f"{model.name}/1", 32)
        ready = c.endpoints.wait_ready(name, 60)
        assert ready.status.state == "ready" and ready.status.version == 1 and ready.task == "classification"

        frame = pd.read_csv(model.csv)  # 150 rows: served in chunks of max_batch_size, answered in order
        answer = c.endpoints.predict(name, frame.drop(columns="species"))
        assert (answer.model, answer.version, answer.endpoint) == (model.name, 1, name)
        labels = [p["label"] for p in answer.predictions]
        assert len(labels) == 150 and sum(a == b for a, b in zip(labels, frame["species"], strict=True)) >= 140
        assert set(answer.predictions[0]["probabilities"]) == {"setosa", "versicolor", "virginica"}
        columns = {k: [SETOSA[k], VIRGINICA[k]] for k in FEATURES}
        assert [p["label"] for p in c.endpoints.predict(name, columns).predictions] == ["setosa", "virginica"]
        assert c.endpoints.predict(name, SETOSA).predictions[0]["label"] == "setosa"

        assert name in {e.name for e in c.endpoints.iter_all()}
        updated = c.endpoints.update(name, max_replicas=2, idle_timeout_s=600, description="changed")
        assert (updated.max_replicas, updated.idle_timeout_s, updated.description) == (2, 600, "changed")
        assert c.endpoints.get(name).max_batch_size == 32  # untouched settings stay

        c.endpoints.delete(name)
        with pytest.raises(errors.NotFound, match=f"endpoint '{name}' not found"):
            c.endpoints.get(name)


def test_an_alias_endpoint_scaled_to_zero_serves_on_demand(model: Model) -> None:
    name = unique("alias")
    with model.client() as c:
        c.models.set_alias(model.name, "prod", 1)
        created = c.deploy(name, f"{model.name}@prod", min_replicas=0, idle_timeout_s=60)
        assert created.model == f"{model.name}@prod" and created.min_replicas == 0
        assert c.endpoints.wait_ready(name, 60).status.state in ("idle", "ready")
        answer = c.endpoints.predict(name, [VIRGINICA])  # a cold start when it was idle
        assert (answer.predictions[0]["label"], answer.version) == ("virginica", 1)
        c.endpoints.delete(name)


def test_sdk_errors(model: Model) -> None:
    name = unique("errors")
    with model.client() as c:
        with pytest.raises(errors.NotFound, match="endpoint 'nope-endpoint' not found"):
            c.endpoints.predict("nope-endpoint", [SETOSA])
        with pytest.raises(errors.NotFound, match="model 'no-such-model' not found"):
            c.deploy(name, "no-such-model")
        with pytest.raises(errors.InvalidInput, match="invalid endpoint name") as caught:
            c.deploy("Not A Name", model.name)
        assert caught.value.param == "name"
        c.deploy(name, model.name)
        with pytest.raises(errors.Conflict, match="already exists"):
            c.deploy(name, model.name)
        c.endpoints.wait_ready(name, 60)
        with pytest.raises(errors.InvalidInput, match="has no column 'sepal length \\(cm\\)'") as caught:
            c.endpoints.predict(name, [{"petals": 3}])
        assert caught.value.param == "sepal length (cm)" and caught.value.status_code == 422
        with pytest.raises(errors.InvalidInput, match="must hold a number"):
            c.endpoints.predict(name, [SETOSA | {"sepal width (cm)": "wide"}])
        with pytest.raises(errors.NotFound, match="no version 9"):
            c.endpoints.update(name, canary=(f"{model.name}/9", 0.1))
        c.endpoints.delete(name)


async def test_async_client_and_the_version_header(model: Model) -> None:
    name = unique("async")
    async with AsyncClient(model.server.url, model.server.admin_key) as c:
        await c.deploy(name, model.name)
        await c.endpoints.wait_ready(name, 60)
        answer = await c.endpoints.predict(name, [SETOSA])
        assert answer.predictions[0]["label"] == "setosa"
        raw = httpx.post(f"{model.server.url}/api/v1/endpoints/{name}/predict", json={"inputs": [SETOSA]},
                         headers={"Authorization": f"Bearer {model.server.admin_key}"})
        assert raw.headers["x-aimaas-model-version"] == f"{model.name}/1"
        await c.endpoints.delete(name)


def test_openai_client_lists_endpoints_as_models(model: Model) -> None:
    pytest.importorskip("openai")
    name = unique("openai")
    with model.client() as c:
        c.deploy(name, model.name, min_replicas=0)
        assert name in {m.id for m in c.openai(max_retries=0).models.list()}
        c.endpoints.delete(name)


# -- CLI ---------------------------------------------------------------------------------------------------
def test_cli_deploy_predict_show_update_delete(model: Model, tmp_path: Path) -> None:
    name = unique("cli")
    deployed = ok(model.cli("deploy", f"{model.name}/1", "--name", name, "--idle-timeout", "5m", "--max-wait-ms", "2"))
    assert f"Endpoint {name} is ready: ready · {model.name}/1 → version 1 · 1/1 replicas ready" in deployed.stdout
    assert f"{model.server.url}/api/v1/endpoints/{name}/predict" in deployed.stdout
    assert '"sepal length (cm)": 1.0' in deployed.stdout and model.server.admin_key not in deployed.output

    predicted = ok(model.cli("predict", name, "--json", json.dumps([SETOSA, VIRGINICA])))
    assert f"Predictions of {model.name}/1 (endpoint {name})" in predicted.stdout
    assert "setosa" in predicted.stdout and "virginica" in predicted.stdout
    out = tmp_path / "predictions.csv"
    ok(model.cli("predict", name, "--csv", str(model.csv), "--batch-size", "100", "--output", str(out)))  # 2 requests
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 150 and sum(r["label"] == r["species"] for r in rows) >= 140
    assert {"probability_setosa", "probability_versicolor", "probability_virginica"} <= set(rows[0])

    listed = ok(model.cli("endpoints", "list"))
    assert name in listed.stdout
    shown = ok(model.cli("endpoints", "show", name))
    assert "Replicas" in shown.stdout and "up to 64 requests, waiting at most 2 ms" in shown.stdout
    updated = json.loads(ok(model.cli("endpoints", "update", name, "--max-replicas", "2", "--json")).stdout)
    assert (updated["max_replicas"], updated["idle_timeout_s"]) == (2, 300)

    ok(model.cli("endpoints", "delete", name, "--yes"))
    assert refused(model.cli("endpoints", "show", name)) == f"error: endpoint '{name}' not found"


def test_cli_errors(model: Model) -> None:
    assert refused(model.cli("predict", "nope-endpoint", "--json", '[{"a": 1}]')) == (
        "error: endpoint 'nope-endpoint' not found"
    )
    assert "model 'no-such-model' not found" in refused(model.cli("deploy", "no-such-model", "--name", unique("x")))
    name = unique("cli-err")
    ok(model.cli("deploy", model.name, "--name", name))
    line = refused(model.cli("predict", name, "--json", '[{"petals": 3}]'))
    assert line.startswith("error: Row 0 has no column 'sepal length (cm)'; the model needs it.")
    ok(model.cli("endpoints", "delete", name, "--yes"))
