"""run_training: rows and a split in, a tested, exported, checked model out."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from aimaas.errors import InvalidInput
from aimaas.training.base import TaskKind
from aimaas.training.onnx_check import run_onnx
from aimaas.training.runner import RunHooks, TrainingPlan, run_training


def iris() -> tuple[pd.DataFrame, np.ndarray]:
    from sklearn.datasets import load_iris

    bunch = load_iris(as_frame=True)
    frame = bunch.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    frame["target"] = bunch.target_names[bunch.target]
    assignment = np.tile(np.array([0, 0, 0, 0, 1, 2], dtype=np.int8), 25)
    return frame, assignment


def test_a_search_tests_once_exports_and_checks_parity() -> None:
    frame, assignment = iris()
    events: list[dict[str, Any]] = []
    plan = TrainingPlan(task=TaskKind.CLASSIFICATION, target="target", max_trials=2, cv_folds=3)
    out = run_training(frame, assignment, plan, hooks=RunHooks(report=events.append))
    assert out.counts == {"train": 100, "validation": 25, "test": 25}
    assert out.metric == "f1_macro" and out.score == out.metrics["f1_macro"] and out.score > 0.8
    assert out.tuning is not None and len(out.tuning["trials"]) == 2
    assert out.report["rows"] == 25 and len(out.report["confusion_matrix"]["matrix"]) == 3
    assert out.report["importance"]["features"] and out.parity["label_agreement"] == 1.0
    assert [i["name"] for i in out.signature["inputs"]] == ["sepal_length", "sepal_width", "petal_length",
                                                            "petal_width"]
    assert set(out.signature["classes"]) == {"setosa", "versicolor", "virginica"}
    assert "confusion_matrix" in out.plots and out.plots["confusion_matrix"].startswith(b"\x89PNG")
    test = frame[assignment == 2].drop(columns=["target"])
    labels = run_onnx(out.onnx, test).labels
    assert labels is not None and len(labels) == 25
    phases = [e["phase"] for e in events if e["event"] == "phase"]
    assert phases == ["searching", "evaluating", "exporting", "rendering"]
    assert sum(e["event"] == "trial" for e in events) == 2


def test_one_trainer_regression_and_rows_without_target() -> None:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame
    frame.loc[:9, "target"] = np.nan
    assignment = np.where(np.arange(len(frame)) % 5 == 0, 2, 0).astype(np.int8)
    plan = TrainingPlan(task=TaskKind.REGRESSION, target="target", trainer="linear_regression", params={"alpha": 0.5})
    out = run_training(frame, assignment, plan)
    assert out.trainer == "linear_regression" and out.params["alpha"] == 0.5 and out.tuning is None
    assert out.metric == "r2" and 0.2 < out.score < 0.8 and out.parity["max_rel_diff"] < 1e-4
    assert out.counts["test"] + out.counts["train"] == len(frame) - 10
    assert any("10 row(s) without a value" in n for n in out.notes)
    assert {"residuals", "predicted_vs_actual"} <= set(out.plots)


def test_clustering_picks_k_by_silhouette() -> None:
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [8, 8], [0, 8]])
    points = np.concatenate([rng.normal(c, 0.5, size=(40, 2)) for c in centres])
    frame = pd.DataFrame(points, columns=["a", "b"])
    assignment = np.where(np.arange(len(frame)) % 4 == 0, 2, 0).astype(np.int8)
    trials: list[dict[str, Any]] = []
    out = run_training(frame, assignment, TrainingPlan(task=TaskKind.CLUSTERING),
                       hooks=RunHooks(report=lambda e: trials.append(e) if e["event"] == "trial" else None))
    assert out.params["n_clusters"] == 3 and out.metric == "silhouette" and out.score > 0.6
    assert [t["params"]["n_clusters"] for t in trials] == list(range(2, 11))


class Stop(Exception):
    pass


def test_check_stops_the_run_between_steps() -> None:
    frame, assignment = iris()
    calls = {"n": 0}

    def check() -> None:
        calls["n"] += 1
        if calls["n"] > 1:
            raise Stop

    with pytest.raises(Stop):
        run_training(frame, assignment, TrainingPlan(task=TaskKind.CLASSIFICATION, target="target",
                                                     trainer="logistic_regression"), hooks=RunHooks(check=check))


@pytest.mark.parametrize(
    ("plan", "assignment", "param"),
    [
        (TrainingPlan(task=TaskKind.CLASSIFICATION, target="colour"), None, "target"),
        (TrainingPlan(task=TaskKind.CLASSIFICATION, target="target"), np.zeros(150, dtype=np.int8), "split_id"),
        (TrainingPlan(task=TaskKind.CLASSIFICATION, target="target"), np.zeros(10, dtype=np.int8), "split_id"),
        (TrainingPlan(task=TaskKind.CLASSIFICATION, target="target", trainer="random_forest",
                      modality="text", text_column="target"), None, "trainer"),
    ],
)
def test_bad_inputs(plan: TrainingPlan, assignment: np.ndarray | None, param: str) -> None:
    frame, default = iris()
    with pytest.raises(InvalidInput) as err:
        run_training(frame, default if assignment is None else assignment, plan)
    assert err.value.param == param
