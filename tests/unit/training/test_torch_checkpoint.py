"""The torch epoch loop: per-epoch checkpoints (safetensors + JSON), exact resume, cancellation, stopping rules."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from aimaas.errors import InvalidInput
from aimaas.training import get_trainer
from aimaas.training.torch_common import LoopConfig, train_epochs, validation_split

from .conftest import Split
from .test_torch_cnn import digits_split

torch = pytest.importorskip("torch")


class Cancelled(Exception):
    pass


def kinds(events: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(e["event"], e.get("epoch")) for e in events if e["event"] in ("epoch", "resumed")]


def checkpoint_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)).split("/", 1)[-1] for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_resume_continues_after_the_saved_epoch_and_equals_an_uninterrupted_run(
        name: str, wine: Split, tmp_path: Path) -> None:
    data = wine if name == "mlp" else digits_split(300)
    params: dict[str, Any] = {"task": "classification"} if name == "mlp" else {"filters": 8, "dense_units": 32}
    events: list[dict[str, Any]] = []
    first = get_trainer(name)(max_epochs=2, **params).fit(data.X_train, data.y_train, report=events.append,
                                                             checkpoint_dir=tmp_path)
    assert first.extra["epochs"] == 2 and first.extra["resumed_from"] is None
    assert kinds(events) == [("epoch", 1), ("epoch", 2)]

    events.clear()
    resumed = get_trainer(name)(max_epochs=4, **params)
    result = resumed.fit(data.X_train, data.y_train, report=events.append, checkpoint_dir=tmp_path)
    assert kinds(events) == [("resumed", 2), ("epoch", 3), ("epoch", 4)]
    assert next(e for e in events if e["event"] == "resumed")["next_epoch"] == 3
    assert result.extra["resumed_from"] == 2 and result.extra["epochs"] == 4
    assert any("Resumed from the checkpoint of epoch 2" in n for n in result.notes)
    assert [h["epoch"] for h in result.extra["history"]] == [1, 2, 3, 4]

    straight = get_trainer(name)(max_epochs=4, **params)
    straight.fit(data.X_train, data.y_train)
    np.testing.assert_allclose(resumed.predict_proba(data.X_test), straight.predict_proba(data.X_test),
                               rtol=0, atol=1e-6)
    assert resumed.export_onnx(data.X_test.head()) == straight.export_onnx(data.X_test.head())


def test_checkpoint_is_safetensors_and_json_written_atomically(wine: Split, tmp_path: Path) -> None:
    trainer = get_trainer("mlp")(task="classification", max_epochs=3)
    trainer.fit(wine.X_train, wine.y_train, checkpoint_dir=tmp_path)
    # one epoch folder (the earlier ones are removed once state.json no longer names them), no temp file
    assert checkpoint_files(tmp_path) == ["best.safetensors", "model.safetensors", "optimizer.safetensors",
                                          "state.json"]
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["epoch"] == 3 and state["stop_reason"] == "max_epochs" and len(state["history"]) == 3
    for entry in state["files"].values():
        data = (tmp_path / entry["path"]).read_bytes()
        header_len = int.from_bytes(data[:8], "little")  # safetensors: u64 length + JSON header
        assert json.loads(data[8:8 + header_len])
        assert stat.S_IMODE(os.stat(tmp_path / entry["path"]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "state.json").st_mode) == 0o600
    for path in tmp_path.rglob("*"):
        assert not path.is_file() or path.read_bytes()[:1] != b"\x80"  # nothing pickled


def test_cancelling_in_report_propagates_and_leaves_a_checkpoint(wine: Split, tmp_path: Path) -> None:
    def report(event: dict[str, Any]) -> None:
        if event["event"] == "epoch" and event["epoch"] == 1:
            raise Cancelled

    with pytest.raises(Cancelled):
        get_trainer("mlp")(task="classification", max_epochs=5).fit(wine.X_train, wine.y_train, report=report,
                                                                     checkpoint_dir=tmp_path)
    assert json.loads((tmp_path / "state.json").read_text())["epoch"] == 1
    events: list[dict[str, Any]] = []
    result = get_trainer("mlp")(task="classification", max_epochs=3).fit(
        wine.X_train, wine.y_train, report=events.append, checkpoint_dir=tmp_path)
    assert kinds(events) == [("resumed", 1), ("epoch", 2), ("epoch", 3)]
    assert result.extra["epochs"] == 3


def test_a_checkpoint_for_other_settings_or_data_is_ignored(wine: Split, tmp_path: Path) -> None:
    get_trainer("mlp")(task="classification", max_epochs=2).fit(wine.X_train, wine.y_train, checkpoint_dir=tmp_path)
    for trainer, X, y in (
        (get_trainer("mlp")(task="classification", max_epochs=3, hidden_units=32), wine.X_train, wine.y_train),
        (get_trainer("mlp")(task="classification", max_epochs=3), wine.X_train.iloc[1:], wine.y_train.iloc[1:]),
        (get_trainer("mlp")(task="classification", max_epochs=3, random_state=1), wine.X_train, wine.y_train),
    ):
        events: list[dict[str, Any]] = []
        result = trainer.fit(X, y, report=events.append, checkpoint_dir=tmp_path)
        assert kinds(events)[0] == ("epoch", 1)
        assert result.extra["resumed_from"] is None
        assert any("other settings or data" in n for n in result.notes)


def test_a_damaged_checkpoint_is_ignored_with_a_note(wine: Split, tmp_path: Path) -> None:
    get_trainer("mlp")(task="classification", max_epochs=2).fit(wine.X_train, wine.y_train, checkpoint_dir=tmp_path)
    state = json.loads((tmp_path / "state.json").read_text())
    model_file = tmp_path / state["files"]["model"]["path"]
    model_file.write_bytes(model_file.read_bytes()[:-4] + b"\0\0\0\0")
    events: list[dict[str, Any]] = []
    result = get_trainer("mlp")(task="classification", max_epochs=2).fit(
        wine.X_train, wine.y_train, report=events.append, checkpoint_dir=tmp_path)
    assert kinds(events) == [("epoch", 1), ("epoch", 2)]
    assert any("damaged checkpoint" in n and "sha256" in n for n in result.notes)

    (tmp_path / "state.json").write_text(json.dumps({**state, "files": {"model": {"path": "../../etc/passwd",
                                                                                   "sha256": "0"}}}))
    result = get_trainer("mlp")(task="classification", max_epochs=1).fit(wine.X_train, wine.y_train,
                                                                          checkpoint_dir=tmp_path)
    assert result.extra["resumed_from"] is None


def test_resuming_a_finished_run_trains_no_more_epochs(wine: Split, tmp_path: Path) -> None:
    first = get_trainer("mlp")(task="classification", max_epochs=3)
    first.fit(wine.X_train, wine.y_train, checkpoint_dir=tmp_path)
    events: list[dict[str, Any]] = []
    again = get_trainer("mlp")(task="classification", max_epochs=3)
    result = again.fit(wine.X_train, wine.y_train, report=events.append, checkpoint_dir=tmp_path)
    assert kinds(events) == [("resumed", 3)] and result.extra["stop_reason"] == "max_epochs"
    np.testing.assert_array_equal(first.predict_proba(wine.X_test), again.predict_proba(wine.X_test))


def _toy(n: int = 200, seed: int = 0) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] + rng.normal(scale=0.5, size=n) > 0).astype(np.int64)  # noisy: it overfits
    return torch.as_tensor(X), torch.as_tensor(y)


def _config(**changes: Any) -> LoopConfig:
    base = {"max_epochs": 50, "patience": 3, "max_seconds": None, "lr": 0.05, "weight_decay": 0.0,
            "batch_size": 32, "threads": 1}
    return LoopConfig.from_params({**base, **changes}, seed=0)


def test_early_stopping_restores_the_best_epoch() -> None:
    X, y = _toy()
    Xv, yv = _toy(100, seed=1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    loss = torch.nn.CrossEntropyLoss()
    out = train_epochs(model, loss, X, y, _config(max_epochs=200, lr=0.05), X_valid=Xv, y_valid=yv,
                       score_fn=lambda o, t: float((o.argmax(1) == t).float().mean()))
    assert out.stop_reason == "early_stopping"
    assert out.epochs == out.best_epoch + 3 and out.epochs < 200
    assert not model.training
    with torch.no_grad():
        assert float(loss(model(Xv), yv)) == pytest.approx(out.best_valid_loss, rel=1e-5)
    assert out.valid_score is not None and out.valid_score > 0.75


def test_max_seconds_stops_after_the_current_epoch() -> None:
    X, y = _toy()
    model = torch.nn.Linear(4, 2)
    out = train_epochs(model, torch.nn.CrossEntropyLoss(), X, y, _config(max_seconds=0.0, patience=None))
    assert out.epochs == 1 and out.stop_reason == "max_seconds"


@pytest.mark.parametrize(("name", "value"), [("lr", 0), ("lr", "fast"), ("batch_size", 0), ("batch_size", 2.5),
                                            ("max_epochs", True), ("patience", -1), ("threads", 0),
                                            ("weight_decay", float("nan"))])
def test_bad_loop_settings_name_the_hyperparameter(name: str, value: Any, wine: Split) -> None:
    with pytest.raises(InvalidInput) as info:
        get_trainer("mlp")(task="classification", **{name: value}).fit(wine.X_train, wine.y_train)
    assert info.value.param == name


def test_a_diverging_fit_says_to_lower_the_learning_rate() -> None:
    X, y = _toy()
    model = torch.nn.Linear(4, 1)
    with pytest.raises(InvalidInput) as info:
        train_epochs(model, torch.nn.MSELoss(), X * 1e30, y.float().reshape(-1, 1), _config(lr=1e10))
    assert info.value.param == "lr" and "diverged" in info.value.message


def test_validation_split_is_stratified_and_seeded() -> None:
    labels = np.array([0] * 80 + [1] * 20)
    train, valid = validation_split(100, 0.2, seed=3, labels=labels)
    assert len(valid) == 20 and sorted(np.bincount(labels[valid]).tolist()) == [4, 16]
    assert set(train.tolist()) | set(valid.tolist()) == set(range(100)) and not set(train) & set(valid)
    again = validation_split(100, 0.2, seed=3, labels=labels)
    np.testing.assert_array_equal(valid, again[1])
    assert len(validation_split(3, 0.1, seed=0)[1]) == 0  # too few rows: no hold-out
    labels_df = pd.Series(labels)
    assert len(validation_split(100, 0.0, seed=0, labels=labels_df.to_numpy())[1]) == 0
