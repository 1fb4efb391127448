"""Evaluation plots: real evaluation dicts from small fitted models become valid, deterministic PNGs; plots the
data cannot support are absent; malformed entries become notes. About 13 s on the shared 2-core machine."""

from __future__ import annotations

import io
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from PIL import Image

from aimaas.errors import InvalidInput
from aimaas.training import (
    evaluate_classification,
    evaluate_clustering,
    evaluate_regression,
    get_trainer,
    permutation_importance_table,
)
from aimaas.training.plots import DPI, FIGSIZE, PLOT_NAMES, PlotSet, render_plots
from aimaas.training.tuning import tune

from .conftest import Split

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIZE = (int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI))


def fitted(name: str, task: str, data: Split, **params: Any) -> Any:
    trainer = get_trainer(name)(task=task, random_state=0, **params)
    trainer.fit(data.X_train, data.y_train, schema=data.schema)
    return trainer


def assert_png(data: bytes) -> Image.Image:
    """A decodable PNG of the fixed size that actually draws something (not a blank canvas)."""
    assert data.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG" and image.size == SIZE
    colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 20
    return image


@pytest.fixture(scope="module")
def iris_report(iris: Split) -> dict[str, Any]:
    """Multiclass evaluation + permutation importance + a real (small) tuning run + per-epoch events."""
    trainer = fitted("logistic_regression", "classification", iris)
    X, y = iris.X_test, iris.y_test
    report = evaluate_classification(y.to_numpy(), trainer.predict(X), trainer.predict_proba(X), trainer.classes)
    report["importance"] = permutation_importance_table(trainer, X, y, n_repeats=2)
    result = tune(iris.X_train, iris.y_train, task="classification", trainers=["logistic_regression"], n_trials=4,
                  cv_folds=2, pruner="none")
    report["tuning"] = result.to_dict()
    report["epochs"] = [{"epoch": e, "loss": 1.0 / e, "valid_score": 0.6 + e / 50} for e in range(1, 11)]
    return report


def test_multiclass_report_draws_what_it_holds(iris_report: dict[str, Any]) -> None:
    plots = render_plots(iris_report)
    assert isinstance(plots, PlotSet) and plots.notes == []
    expected = ["confusion_matrix", "per_class_f1", "feature_importance", "optimization_history",
                "hyperparameter_importance", "learning_curve"]
    assert list(plots.images) == expected  # PLOT_NAMES order
    assert set(plots.captions) == set(expected)
    for data in plots.images.values():
        assert_png(data)
    # multiclass: no calibration curve in the evaluation, and ROC points were not given (only the AUC)
    assert "calibration" not in plots.images and "roc" not in plots.images
    assert f"{sum(map(sum, iris_report['confusion_matrix']['matrix']))} test rows over 3 classes" in (
        plots.captions["confusion_matrix"])


def test_binary_classifier_adds_calibration_and_roc_from_curve_points(breast_cancer: Split) -> None:
    from sklearn.metrics import roc_curve

    trainer = fitted("logistic_regression", "classification", breast_cancer)
    X, y = breast_cancer.X_test, breast_cancer.y_test.to_numpy()
    proba = trainer.predict_proba(X)
    report = evaluate_classification(y, trainer.predict(X), proba, trainer.classes)
    assert report["roc_curve"]["fpr"][0] == 0.0 and report["roc_curve"]["tpr"][-1] == 1.0
    plots = render_plots(report)
    assert "calibration" in plots.images and "roc" in plots.images
    assert_png(plots.images["calibration"])
    without = render_plots({k: v for k, v in report.items() if k != "roc_curve"})
    assert "roc" not in without.images  # only drawn from real curve points
    fpr, tpr, _ = roc_curve(y, proba[:, 1])
    with_curve = render_plots({**report, "roc_curve": {"fpr": fpr.tolist(), "tpr": tpr.tolist()}})
    assert_png(with_curve.images["roc"])
    assert f"AUC {report['roc_auc']:.3f}" in with_curve.captions["roc"]


def test_regression_report(diabetes: Split) -> None:
    trainer = fitted("linear_regression", "regression", diabetes)
    report = evaluate_regression(diabetes.y_test, trainer.predict(diabetes.X_test))
    report["importance"] = permutation_importance_table(trainer, diabetes.X_test, diabetes.y_test, n_repeats=2)
    plots = render_plots({**report, "task": "regression"})
    assert list(plots.images) == ["residuals", "predicted_vs_actual", "feature_importance"]
    for data in plots.images.values():
        assert_png(data)
    assert f"{len(diabetes.y_test)} test rows" in plots.captions["residuals"]


def test_clustering_report(iris: Split) -> None:
    trainer = fitted("kmeans", "clustering", iris, n_clusters=3)
    labels = trainer.predict(iris.X_test)
    report = evaluate_clustering(iris.X_test.to_numpy(), labels)
    plots = render_plots(report)
    assert list(plots.images) == ["cluster_sizes"]
    assert_png(plots.images["cluster_sizes"])


def test_many_classes_and_long_names_stay_legible() -> None:
    rng = np.random.default_rng(0)
    labels = [f"a_rather_long_class_name_number_{i:02d}" for i in range(64)]
    truth = rng.integers(0, 64, 2_000)
    pred = np.where(rng.random(2_000) < 0.7, truth, rng.integers(0, 64, 2_000))
    report = evaluate_classification(np.array(labels)[truth], np.array(labels)[pred], None, labels)
    plots = render_plots(report)
    assert list(plots.images) == ["confusion_matrix", "per_class_f1"]
    for data in plots.images.values():
        assert_png(data)
    assert "every 4th label shown" in plots.captions["confusion_matrix"]
    assert "20 weakest of 64 classes" in plots.captions["per_class_f1"]


def test_empty_or_partial_data_gives_no_plot() -> None:
    assert render_plots({}) == PlotSet()
    only_failed = {"tuning": {"trials": [{"number": 0, "score": None, "state": "fail"}], "importances": {}},
                   "epochs": [], "importance": {"features": []}}
    assert render_plots(only_failed) == PlotSet()
    scores_only = render_plots({"epochs": [{"epoch": 1, "valid_score": 0.5}, {"epoch": 2, "valid_score": 0.7}]})
    assert list(scores_only.images) == ["learning_curve"]


def test_a_broken_entry_becomes_a_note_and_the_rest_still_renders(iris_report: dict[str, Any]) -> None:
    broken = dict(iris_report)
    broken["confusion_matrix"] = {"labels": [0, 1, 2], "matrix": [[1, 2], [3, 4]]}
    broken["importance"] = {"metric": "accuracy", "features": "not a list of rows"}
    broken["roc_curve"] = {"fpr": [0.0, 1.0], "tpr": [0.5]}
    plots = render_plots(broken)
    failed = sorted(note.split(":")[0] for note in plots.notes)
    assert failed == ["confusion_matrix", "feature_importance", "roc"]
    assert "expected (3, 3)" in next(n for n in plots.notes if n.startswith("confusion_matrix"))
    assert {"per_class_f1", "optimization_history", "learning_curve"} <= set(plots.images)
    assert not set(plots.images) & {"confusion_matrix", "feature_importance", "roc"}
    with pytest.raises(InvalidInput) as err:
        render_plots([1, 2, 3])  # type: ignore[arg-type]
    assert err.value.param == "report"


def test_output_is_deterministic_and_thread_safe(iris_report: dict[str, Any]) -> None:
    subset = {k: iris_report[k] for k in ("confusion_matrix", "per_class", "epochs")}
    first = render_plots(subset)
    with ThreadPoolExecutor(max_workers=2) as pool:
        others = list(pool.map(lambda _: render_plots(subset), range(2)))
    assert all(other.images == first.images for other in others)
    for data in first.images.values():
        assert b"Software" not in data and b"tIME" not in data  # no tool name or timestamp chunk


def test_plot_names_are_the_documented_set() -> None:
    assert len(set(PLOT_NAMES)) == len(PLOT_NAMES) == 11


def test_importing_the_module_loads_no_plotting_library() -> None:
    code = ("import sys, aimaas.training.plots, aimaas.training.model_card; "
            "print(sorted(m for m in ('matplotlib', 'PIL', 'sklearn', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
