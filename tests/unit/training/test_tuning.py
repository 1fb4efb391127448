"""AutoML tuning: budgets, determinism, failures, pruning, progress and cancellation, RDB persistence."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from aimaas.errors import AimaasError, Conflict, InvalidInput, StorageError
from aimaas.training.base import TaskKind, TrialLike
from aimaas.training.sklearn_trainers import LogisticRegressionTrainer
from aimaas.training.tuning import TuningResult, evaluate_on_test, tune

from .conftest import Split

optuna = pytest.importorskip("optuna")

FAST = ["logistic_regression", "hist_gradient_boosting"]


class Flaky(LogisticRegressionTrainer):
    """Logistic regression whose ``explode=True`` region raises at fit (not registered)."""

    name = "flaky"
    hyperparameters: ClassVar[dict[str, Any]] = {**LogisticRegressionTrainer.hyperparameters, "explode": False}

    def _make_estimator(self) -> Any:
        if self.params["explode"]:
            raise RuntimeError("boom")
        return super()._make_estimator()

    @classmethod
    def search_space(cls, trial: TrialLike) -> dict[str, Any]:
        return {"C": trial.suggest_float("C", 0.1, 10, log=True),
                "explode": trial.suggest_categorical("explode", [False, True])}


class AlwaysInvalid(Flaky):
    name = "always_invalid"

    def _make_estimator(self) -> Any:
        raise InvalidInput("no usable column", param="features")


class BadRegion(LogisticRegressionTrainer):
    """Logistic regression for ``x`` <= 0.5; a uniform random guesser above (a deliberately bad region)."""

    name = "bad_region"
    hyperparameters: ClassVar[dict[str, Any]] = {**LogisticRegressionTrainer.hyperparameters, "x": 0.0}

    def _make_estimator(self) -> Any:
        if self.params["x"] > 0.5:
            from sklearn.dummy import DummyClassifier

            return DummyClassifier(strategy="uniform", random_state=self.random_state)
        return super()._make_estimator()

    def _fit_estimator(self, estimator: Any, X: Any, y: Any, valid: Any, report: Any) -> dict[str, Any]:
        estimator.fit(X, y)
        return {}

    @classmethod
    def search_space(cls, trial: TrialLike) -> dict[str, Any]:
        return {"x": trial.suggest_float("x", 0.0, 1.0)}


class Sleepy(LogisticRegressionTrainer):
    """Logistic regression that takes at least 0.25 s per fit."""

    name = "sleepy"

    def _fit_estimator(self, estimator: Any, X: Any, y: Any, valid: Any, report: Any) -> dict[str, Any]:
        time.sleep(0.25)
        return super()._fit_estimator(estimator, X, y, valid, report)


@pytest.fixture(autouse=True)
def _one_native_thread() -> Iterator[None]:
    """One OpenMP/BLAS thread per test process: `-n 2` workers then do not oversubscribe the cores."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def _check_result(result: TuningResult, n_trials: int) -> None:
    assert len(result.trials) == n_trials
    assert result.best_trainer == result.trials[result.best_trial]["trainer"]
    assert result.best_params == result.trials[result.best_trial]["params"]
    assert result.fit.params == {**result.trainer.hyperparameters, **result.best_params}
    json.dumps(result.to_dict())
    assert {"number", "trainer", "params", "score", "state", "duration_s"} <= set(result.trials[0])


def test_iris(iris: Split) -> None:
    events: list[dict[str, Any]] = []
    result = tune(iris.X_train, iris.y_train, task="classification", n_trials=6, cv_folds=3, report=events.append)
    _check_result(result, 6)
    assert result.metric == "f1_macro" and result.direction == "maximize"
    assert result.cv == {"kind": "stratified_kfold", "folds": 3, "rows": len(iris.X_train), "seed": 0}
    assert result.best_score > 0.9
    assert [e["number"] for e in events] == list(range(6))
    assert all(e["event"] == "trial" and "best_score" in e and e["duration_s"] >= 0 for e in events)
    # the first trials are each trainer's defaults
    assert [r["trainer"] for r in result.trials[:4]] == ["logistic_regression", "hist_gradient_boosting",
                                                         "lightgbm", "random_forest"]
    assert result.trials[0]["params"] == {"C": 1.0, "class_weight": None}
    assert all(r["note"] == "trainer defaults" for r in result.trials[:4] if r["state"] == "complete")
    test = evaluate_on_test(result, iris.X_test, iris.y_test)
    assert test["metric"] == "f1_macro" and test["score"] == test["f1_macro"] > 0.85
    assert test["confusion_matrix"]["labels"] == [0, 1, 2]


def test_wine_log_loss_is_minimised(wine: Split) -> None:
    result = tune(wine.X_train, wine.y_train, task="classification", metric="log_loss", trainers=FAST, n_trials=6,
                  cv_folds=3)
    _check_result(result, 6)
    assert result.direction == "minimize"
    done = [r["score"] for r in result.trials if r["state"] == "complete"]
    assert result.best_score == min(done) < 0.3
    assert evaluate_on_test(result, wine.X_test, wine.y_test)["log_loss"] < 0.5


def test_diabetes_cv_and_validation_split(diabetes: Split) -> None:
    result = tune(diabetes.X_train, diabetes.y_train, task="regression", n_trials=6, cv_folds=3,
                  trainers=["linear_regression", "hist_gradient_boosting"])
    _check_result(result, 6)
    assert result.metric == "r2" and result.cv["kind"] == "kfold"
    assert 0.3 < result.best_score < 0.7
    assert evaluate_on_test(result, diabetes.X_test, diabetes.y_test)["score"] > 0.25

    cut = len(diabetes.X_train) * 3 // 4
    X, y = diabetes.X_train, diabetes.y_train
    holdout = tune(X.iloc[:cut], y.iloc[:cut], X_valid=X.iloc[cut:], y_valid=y.iloc[cut:], task="regression",
                   metric="rmse", n_trials=4, trainers=["linear_regression"])
    assert holdout.cv["kind"] == "holdout" and holdout.direction == "minimize"
    assert holdout.fit.n_rows == len(X)  # refit on train + validation rows
    assert evaluate_on_test(holdout, diabetes.X_test, diabetes.y_test)["rmse"] == pytest.approx(
        evaluate_on_test(holdout, diabetes.X_test, diabetes.y_test)["score"])


def test_same_seed_same_study(iris: Split) -> None:
    def run() -> TuningResult:
        return tune(iris.X_train, iris.y_train, task="classification", trainers=FAST, n_trials=6, cv_folds=3,
                    seed=3, try_defaults=False)

    a, b = run(), run()
    assert (a.best_trainer, a.best_params, a.best_score) == (b.best_trainer, b.best_params, b.best_score)
    assert [(r["trainer"], r["params"], r["score"]) for r in a.trials] == [
        (r["trainer"], r["params"], r["score"]) for r in b.trials]
    c = tune(iris.X_train, iris.y_train, task="classification", trainers=FAST, n_trials=6, cv_folds=3, seed=4,
             try_defaults=False)
    assert [r["params"] for r in c.trials] != [r["params"] for r in a.trials]


def test_timeout_is_honoured(iris: Split) -> None:
    # each trial takes 5 x 0.25 s: the first completes, the second is stopped between folds at the deadline
    result = tune(iris.X_train, iris.y_train, task="classification", trainers=[Sleepy], timeout_s=2.0,
                  try_defaults=False)
    assert result.stop_reason == "timeout"
    assert 2.0 <= result.search_seconds < 2.0 + 0.25 + 1.0  # about one fold fit over the budget, at most
    assert [(r["state"], r["note"]) for r in result.trials] == [("complete", None), ("pruned", "interrupted: timeout")]
    assert result.counts == {"complete": 1, "pruned": 1}


def test_timeout_on_real_trainers(breast_cancer: Split) -> None:
    result = tune(breast_cancer.X_train, breast_cancer.y_train, task="classification", timeout_s=1.5, cv_folds=3)
    assert result.stop_reason == "timeout" and result.counts["complete"] >= 1
    assert "waiting" not in result.counts  # defaults queued but never started are not listed


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"n_trials": 0}, "n_trials"), ({"timeout_s": 0}, "timeout_s"), ({"timeout_s": -1.0}, "timeout_s"),
    ({}, "n_trials"), ({"n_trials": 2, "n_jobs": 0}, "n_jobs"), ({"n_trials": 2, "cv_folds": 1}, "cv_folds"),
    ({"n_trials": 2, "metric": "rmse"}, "metric"), ({"n_trials": 2, "trainers": ["linear_regression"]}, "trainers"),
    ({"n_trials": 2, "trainers": []}, "trainers"), ({"n_trials": 2, "pruner": "hyperband"}, "pruner"),
    ({"n_trials": 2, "trainers": ["xgboost"]}, "trainer"),
])
def test_invalid_input(iris: Split, kwargs: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidInput) as info:
        tune(iris.X_train, iris.y_train, task="classification", **kwargs)
    assert info.value.param == param


def test_clustering_is_not_tuned(iris: Split) -> None:
    with pytest.raises(InvalidInput) as info:
        tune(iris.X_train, iris.y_train, task="clustering", n_trials=2)
    assert info.value.param == "task"


def test_failing_trials_do_not_stop_the_study(iris: Split) -> None:
    result = tune(iris.X_train, iris.y_train, task="classification", trainers=[Flaky], n_trials=8, cv_folds=3,
                  try_defaults=False)
    failed = [r for r in result.trials if r["state"] == "fail"]
    assert failed and result.counts["fail"] == len(failed) < 8
    assert all(r["params"]["explode"] is True and "RuntimeError: boom" in r["note"] for r in failed)
    assert result.best_params["explode"] is False and result.best_trainer == "flaky"


def test_all_trials_failing_raises(iris: Split) -> None:
    with pytest.raises(InvalidInput, match="no usable column"):
        tune(iris.X_train, iris.y_train, task="classification", trainers=[AlwaysInvalid], n_trials=3, cv_folds=3)

    class Broken(Flaky):
        name = "broken"

        def _make_estimator(self) -> Any:
            raise RuntimeError("always")

    with pytest.raises(AimaasError) as info:
        tune(iris.X_train, iris.y_train, task="classification", trainers=[Broken], n_trials=3, cv_folds=3)
    assert info.value.code == "tuning_failed" and "RuntimeError: always" in info.value.message


def test_pruning_stops_the_bad_region(iris: Split) -> None:
    result = tune(iris.X_train, iris.y_train, task="classification", trainers=[BadRegion], n_trials=20,
                  try_defaults=False)
    pruned = [r for r in result.trials if r["state"] == "pruned"]
    assert pruned, "the median pruner should stop some trials in the bad region"
    assert all(r["params"]["x"] > 0.5 and r["note"] == "pruned after 2 fold(s)" for r in pruned)
    assert result.best_params["x"] <= 0.5
    unpruned = tune(iris.X_train, iris.y_train, task="classification", trainers=[BadRegion], n_trials=8,
                    try_defaults=False, pruner="none")
    assert "pruned" not in unpruned.counts
    halving = tune(iris.X_train, iris.y_train, task="classification", trainers=[BadRegion], n_trials=12,
                   try_defaults=False, pruner="successive_halving")
    assert all(r["params"]["x"] > 0.5 for r in halving.trials if r["state"] == "pruned")


def test_should_stop_and_report(iris: Split) -> None:
    events: list[dict[str, Any]] = []
    result = tune(iris.X_train, iris.y_train, task="classification", trainers=FAST, n_trials=20, cv_folds=3,
                  report=events.append, should_stop=lambda: len(events) >= 3)
    assert result.stop_reason == "cancelled"
    assert len(result.trials) == len(events) == 3
    assert result.trainer.classes == [0, 1, 2]  # the best so far is still refitted

    with pytest.raises(Conflict) as info:
        tune(iris.X_train, iris.y_train, task="classification", trainers=FAST, n_trials=5, should_stop=lambda: True)
    assert info.value.code == "tuning_cancelled"

    def abort(event: dict[str, Any]) -> None:
        raise KeyError("job deleted")

    with pytest.raises(KeyError, match="job deleted"):
        tune(iris.X_train, iris.y_train, task="classification", trainers=FAST, n_trials=5, report=abort)


def test_rdb_storage_persists_trials(iris: Split, tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    first = tune(iris.X_train, iris.y_train, task="classification", trainers=FAST, n_trials=4, cv_folds=3,
                 storage=url, study_name="job-1")
    assert first.study_name == "job-1"
    study = optuna.load_study(study_name="job-1", storage=url)
    assert len(study.trials) == 4
    assert study.user_attrs == {"aimaas.task": "classification", "aimaas.metric": "f1_macro"}
    again = tune(iris.X_train, iris.y_train, task="classification", trainers=FAST, n_trials=3, cv_folds=3,
                 storage=url, study_name="job-1")  # resumes: the defaults are not enqueued twice
    assert len(again.trials) == 7 and len(optuna.load_study(study_name="job-1", storage=url).trials) == 7
    with pytest.raises(InvalidInput) as info:
        tune(iris.X_train, iris.y_train, task="classification", metric="accuracy", n_trials=1, storage=url,
             study_name="job-1")
    assert info.value.param == "study_name"


def test_rdb_storage_refuses_the_aimaas_database(iris: Split, tmp_path: Any) -> None:
    from aimaas.storage.sql.engine import create_store_engine
    from aimaas.storage.sql.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'aimaas.db'}"
    engine = create_store_engine(url)
    upgrade(engine)
    engine.dispose()
    with pytest.raises(StorageError) as info:
        tune(iris.X_train, iris.y_train, task="classification", n_trials=1, storage=url, study_name="job-1")
    assert info.value.code == "tuning_storage" and "database of its own" in info.value.message


def test_importances(iris: Split) -> None:
    result = tune(iris.X_train, iris.y_train, task="classification", trainers=["logistic_regression"],
                  n_trials=8, cv_folds=3, pruner="none")
    table = result.importances
    assert table["evaluator"] == "ped_anova" and table["completed"] == 8
    shares = table["by_trainer"]["logistic_regression"]
    assert set(shares) <= {"C", "class_weight"} and sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    few = tune(iris.X_train, iris.y_train, task="classification", trainers=["logistic_regression"], n_trials=2,
               cv_folds=3)
    assert few.importances["overall"] == {} and "need at least" in few.importances["notes"][0]


def test_threads(iris: Split) -> None:
    result = tune(iris.X_train, iris.y_train, task="classification", trainers=FAST, n_trials=6, cv_folds=3,
                  n_jobs=2)
    _check_result(result, 6)


def test_import_stays_cheap() -> None:
    code = ("import sys, aimaas.training.tuning; print([m for m in ('optuna', 'sklearn', 'lightgbm', 'scipy') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert TaskKind.CLASSIFICATION.value == "classification"
