"""Training and the model registry through the SDK (sync and async) against a real `aimaas serve`.

One module-scoped fixture trains two versions of one model on iris (a short search, then one trainer with
fixed hyperparameters, queued together) and every test reuses them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aimaas import errors
from aimaas.schemas import JobEventPublic, JobPublic
from aimaas.sdk import AsyncClient, Client
from tests.conftest import LiveServer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PHASES = {"loading", "searching", "evaluating", "exporting", "registering"}


def write_iris(path: Path) -> Path:
    from sklearn.datasets import load_iris

    frame = load_iris(as_frame=True).frame
    frame["species"] = frame.pop("target").map({0: "setosa", 1: "versicolor", 2: "virginica"})
    frame.to_csv(path, index=False)
    return path


def run_onnx(path: Path, csv: Path) -> float:
    """Accuracy of the ONNX model at ``path`` on the iris rows, computed with onnxruntime."""
    import numpy as np
    import onnxruntime as ort
    import pandas as pd

    frame = pd.read_csv(csv)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    features = frame.drop(columns="species")
    inputs = session.get_inputs()
    if len(inputs) == 1:
        feeds = {inputs[0].name: features.to_numpy(np.float32)}
    else:  # one input per column in column order (ONNX names are sanitised: "sepal_length__cm"), shaped (rows, 1)
        columns = features.columns
        feeds = {i.name: features[c].to_numpy(np.float32).reshape(-1, 1) for i, c in zip(inputs, columns, strict=True)}
    labels = session.run(None, feeds)[0]
    return float(np.mean(np.asarray(labels).astype(str) == frame["species"].to_numpy().astype(str)))


@dataclass
class Trained:
    name: str
    dataset: str
    csv: Path
    searched: JobPublic  # the AutoML search (followed over the event stream)
    fixed: JobPublic  # logistic_regression with C=0.5
    events: list[JobEventPublic]
    replay: JobPublic  # the search submitted again with the same idempotency key


@pytest.fixture(scope="module")
def trained(live_server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    suffix = os.urandom(3).hex()
    name, dataset = f"iris-sdk-{suffix}", f"iris-sdk-data-{suffix}"
    csv = write_iris(tmp_path_factory.mktemp("iris") / "iris.csv")
    with Client(live_server.url, live_server.admin_key) as c:
        c.datasets.upload(csv, name=dataset)
        key = f"train-{suffix}"
        searched = c.train(dataset, "species", budget_s=2, max_trials=2, model=name, idempotency_key=key)
        fixed = c.train(dataset, "species", trainer="logistic_regression", params={"C": 0.5}, model=name)
        replay = c.train(dataset, "species", budget_s=2, max_trials=2, model=name, idempotency_key=key)
        events = list(c.jobs.stream(searched.id))
        searched = c.jobs.wait(searched.id, timeout=180)
        fixed = c.jobs.wait(fixed.id, timeout=180)
    return Trained(name, dataset, csv, searched, fixed, events, replay)


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[Client]:
    with Client(live_server.url, live_server.admin_key) as c:
        yield c


def test_training_reports_progress_and_registers_versions(trained: Trained) -> None:
    assert trained.replay.id == trained.searched.id  # the idempotency key replays the first job
    assert (trained.searched.state, trained.fixed.state) == ("succeeded", "succeeded"), trained.searched.error
    result = trained.searched.result or {}
    assert result["model"] == trained.name and result["ref"] == f"{trained.name}/{result['version']}"
    assert result["task"] == "classification" and result["metric"] == "f1_macro"
    assert 0.7 < result["score"] <= 1 and result["metrics"]["f1_macro"] == result["score"]
    assert result["trials"] >= 1 and result["parity"]
    versions = {result["version"], (trained.fixed.result or {})["version"]}
    assert versions == {1, 2}

    phases = {(e.payload.get("fields") or {}).get("phase") for e in trained.events if e.type == "log"}
    assert phases >= PHASES
    percents = [float(e.payload["progress"]) for e in trained.events if e.type == "progress"]
    assert percents == sorted(percents) and percents[0] >= 0 and percents[-1] <= 100
    metrics = [e.payload for e in trained.events if e.type == "metric"]
    assert any(m["name"] == "trial_score" and "trainer" in m["labels"] for m in metrics)
    assert any(m["name"] == "best_score" and m["labels"]["metric"] == "f1_macro" for m in metrics)


def test_models_versions_and_files(client: Client, trained: Trained, tmp_path: Path) -> None:
    name = trained.name
    assert name in {m.name for m in client.models.iter_all()}
    assert name in {m.name for m in client.models.list(limit=1000).items}
    detail = client.models.get(name)
    assert detail.latest_version == 2 and [v.version for v in detail.versions] == [1, 2]
    latest = client.models.version(name)
    assert latest.ref == f"{name}/2" and client.models.version(name, 1).version == 1
    assert client.models.version(f"{name}/1").ref == f"{name}/1"
    assert client.models.version(f"{name}@latest").version == 2
    assert latest.format == "onnx" and latest.metrics["f1_macro"] > 0.7 and latest.lineage["dataset"] == trained.dataset

    ref = (trained.searched.result or {})["ref"]
    model_file = client.models.download(ref, tmp_path)
    assert model_file.parent == tmp_path and model_file.suffix == ".onnx"
    assert run_onnx(model_file, trained.csv) > 0.8

    card = client.models.card(ref)
    assert card.startswith("# ") and name in card and "f1_macro" in card
    report = client.models.report(ref)
    assert report["confusion_matrix"] and report["metric"] == "f1_macro"

    version = client.models.version(ref)
    assert "confusion_matrix" in version.plots
    for plot in version.plots:
        saved = client.models.plot(ref, plot, tmp_path / "plots" / f"{plot}.png")
        assert saved.read_bytes().startswith(PNG_MAGIC), plot
    with pytest.raises(errors.NotFound):
        client.models.plot(ref, "no_such_plot", tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_aliases_status_and_compare(client: Client, trained: Trained) -> None:
    name = trained.name
    assert client.models.set_alias(name, "prod", 1).aliases == {"prod": 1}
    assert client.models.version(f"{name}@prod").version == 1
    assert client.models.set_alias(name, "prod", 2).aliases == {"prod": 2}
    assert client.models.version(f"{name}@prod").aliases == ["prod"]
    client.models.delete_alias(name, "prod")
    with pytest.raises(errors.NotFound):
        client.models.version(f"{name}@prod")

    assert client.models.set_status(f"{name}/1", "archived").status == "archived"
    assert client.models.version(name, 1).status == "archived"
    assert client.models.set_status(f"{name}/1", "ready").status == "ready"

    comparison = client.models.compare([f"{name}/1", f"{name}/2"])
    assert [v.ref for v in comparison.versions] == [f"{name}/1", f"{name}/2"]
    assert comparison.same_test_split is True  # same dataset version, same seed: the same test rows
    assert len(comparison.metrics["f1_macro"]) == 2 and all(x is not None for x in comparison.metrics["f1_macro"])


def test_import_an_onnx_file_and_a_model_folder(client: Client, trained: Trained, tmp_path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    onnx_file = client.models.download(f"{trained.name}/1", tmp_path / "iris.onnx")
    sent: list[tuple[int, int]] = []
    imported_name = f"{trained.name}-imported"
    imported = client.models.import_file(
        imported_name, onnx_file, description="iris again", progress=lambda d, t: sent.append((d, t))
    )
    assert (imported.ref, imported.format) == (f"{imported_name}/1", "onnx")
    assert sent[-1] == (onnx_file.stat().st_size, onnx_file.stat().st_size)
    assert client.models.get(imported_name).description == "iris again"
    again = client.models.download(imported.ref, tmp_path / "again.onnx")
    assert again.read_bytes() == onnx_file.read_bytes()

    folder = tmp_path / "tiny-encoder"
    (folder / ".git").mkdir(parents=True)
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")  # hidden: left out of the zip
    config = {"model_type": "bert", "architectures": ["BertModel"], "hidden_size": 8, "vocab_size": 4}
    (folder / "config.json").write_text(json.dumps(config))
    save_file({"embeddings.weight": np.zeros((4, 8), np.float32)}, str(folder / "model.safetensors"))
    hf = client.models.import_file(f"{trained.name}-hf", folder, task="embedding")
    assert (hf.format, hf.task, hf.version) == ("safetensors", "embedding", 1)

    client.models.delete(imported_name)
    client.models.delete(f"{trained.name}-hf")
    with pytest.raises(errors.NotFound):
        client.models.get(imported_name)


def test_clear_errors(client: Client, trained: Trained, tmp_path: Path) -> None:
    with pytest.raises(errors.NotFound):
        client.models.version("no-such-model-xyz")
    with pytest.raises(errors.NotFound):
        client.models.version(trained.name, 99)
    with pytest.raises(errors.InvalidInput, match="positive integer"):
        client.models.card(f"{trained.name}/two")
    with pytest.raises(errors.NotFound):
        client.train("no-such-dataset-xyz", "species")
    with pytest.raises(errors.InvalidInput) as caught:
        client.train(trained.dataset, "no_such_column")
    assert caught.value.param == "target"
    junk = tmp_path / "weights.pkl"
    junk.write_bytes(b"\x80\x04not a model")
    with pytest.raises(errors.AimaasError):
        client.models.import_file(f"{trained.name}-junk", junk)


async def test_async_client(live_server: LiveServer, trained: Trained, tmp_path: Path) -> None:
    name = trained.name
    async with AsyncClient(live_server.url, live_server.admin_key) as c:
        assert name in [m.name async for m in c.models.iter_all()]
        assert (await c.models.get(name)).latest_version == 2
        assert (await c.models.version(name, 2)).ref == f"{name}/2"
        assert "f1_macro" in await c.models.card(f"{name}/2")
        assert (await c.models.report(name))["confusion_matrix"]
        saved = await c.models.download(name, tmp_path)
        assert run_onnx(saved, trained.csv) > 0.8
        assert (await c.models.plot(name, "confusion_matrix", tmp_path)).read_bytes().startswith(PNG_MAGIC)
        assert (await c.models.set_alias(name, "staging", 1)).aliases == {"staging": 1}
        await c.models.delete_alias(name, "staging")
        assert (await c.models.set_status(f"{name}/2", "archived")).status == "archived"
        assert (await c.models.set_status(f"{name}/2", "ready")).status == "ready"
        comparison = await c.models.compare([f"{name}/1", f"{name}@latest"])
        assert [v.version for v in comparison.versions] == [1, 2]
        job = await c.jobs.wait(trained.searched.id, timeout=5)
        assert job.state == "succeeded"
