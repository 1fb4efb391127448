"""AutoML tuning in one process: budgets, determinism, failures, pruning, progress and cancellation, RDB
persistence, repeated folds and the ensemble of the best trials (worker processes: test_tuning_parallel.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pytest

from aimaas.errors import AimaasError, Conflict, InvalidInput, StorageError
from aimaas.training.base import TaskKind, TrialLike, get_trainer
from aimaas.training.onnx_check import parity
from aimaas.training.sklearn_trainers import LogisticRegressionTrainer
from aimaas.training.tuning import TuningResult, evaluate_on_test, trial_threads, tune
from aimaas.training.tuning_data import TuningData, auto_repeats
from aimaas.training.tuning_summary import choose_single, confidence, select_ensemble

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
    if result.ensemble is not None and result.ensemble["used"]:
        members = result.ensemble["members"]
        better = result.ensemble["score"] > result.ensemble["single_score"]
        assert result.trainer.name == "ensemble" and better == (result.direction == "maximize")
        assert result.fit.params["members"] == [{k: m[k] for k in ("trainer", "params", "weight")} for m in members]
        assert all(m["params"] == result.trials[m["trial"]]["params"] for m in members)
        assert sum(m["weight"] for m in members) == pytest.approx(1.0, abs=1e-5)
    else:  # the best trial, or a simpler one within one standard error of it
        final = result.trials[result.final_trial]
        assert result.fit.params == {**result.trainer.hyperparameters, **final["params"]}
        assert result.trainer.name == final["trainer"] and final["state"] == "complete"
    json.dumps(result.to_dict())
    assert {"number", "trainer", "params", "score", "state", "duration_s"} <= set(result.trials[0])


def test_iris(iris: Split) -> None:
    events: list[dict[str, Any]] = []
    result = tune(iris.X_train, iris.y_train, task="classification", n_trials=6, cv_folds=3, report=events.append)
    _check_result(result, 6)
    assert result.metric == "f1_macro" and result.direction == "maximize"
    # 112 rows: the 3-fold split is repeated 3 times (auto_repeats)
    assert result.cv == {"kind": "stratified_kfold", "folds": 3, "repeats": 3, "rows": len(iris.X_train), "seed": 0}
    assert 0 <= result.startup_seconds < 5 and result.workers == []
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


def test_wine_log_loss_is_minimised_by_an_ensemble(wine: Split) -> None:
    result = tune(wine.X_train, wine.y_train, task="classification", metric="log_loss", trainers=FAST, n_trials=6,
                  cv_folds=3, cv_repeats=1)
    _check_result(result, 6)
    assert result.direction == "minimize"
    done = [r["score"] for r in result.trials if r["state"] == "complete"]
    assert result.best_score == min(done) < 0.3
    # averaging probabilities lowers log loss (it is convex): the two trainers' best trials are averaged
    ensemble = result.ensemble
    assert ensemble is not None and ensemble["used"] and ensemble["score"] < ensemble["single_score"]
    assert {m["trainer"] for m in ensemble["members"]} == set(FAST)
    assert evaluate_on_test(result, wine.X_test, wine.y_test)["log_loss"] < 0.5
    report = parity(result.trainer, result.trainer.export_onnx(wine.X_test.head()), wine.X_test)
    assert report["label_agreement"] == 1.0 and report["max_abs_diff_proba"] < 1e-5
    single = tune(wine.X_train, wine.y_train, task="classification", metric="log_loss", trainers=FAST, n_trials=6,
                  cv_folds=3, cv_repeats=1, ensemble=False)
    assert single.ensemble is None and single.trainer.name == single.best_trainer


def test_diabetes_cv_and_validation_split(diabetes: Split) -> None:
    result = tune(diabetes.X_train, diabetes.y_train, task="regression", n_trials=6, cv_folds=3, cv_repeats=1,
                  trainers=["linear_regression", "hist_gradient_boosting"])
    _check_result(result, 6)
    assert result.metric == "r2" and result.cv["kind"] == "kfold"
    assert 0.3 < result.best_score < 0.7
    assert evaluate_on_test(result, diabetes.X_test, diabetes.y_test)["score"] > 0.25

    cut = len(diabetes.X_train) * 3 // 4
    X, y = diabetes.X_train, diabetes.y_train
    holdout = tune(X.iloc[:cut], y.iloc[:cut], X_valid=X.iloc[cut:], y_valid=y.iloc[cut:], task="regression",
                   metric="rmse", n_trials=4, trainers=["linear_regression", "random_forest"])
    _check_result(holdout, 4)
    assert holdout.cv["kind"] == "holdout" and holdout.direction == "minimize"
    assert holdout.fit.n_rows == len(X)  # refit on train + validation rows
    assert evaluate_on_test(holdout, diabetes.X_test, diabetes.y_test)["rmse"] == pytest.approx(
        evaluate_on_test(holdout, diabetes.X_test, diabetes.y_test)["score"])


def test_same_seed_same_study(iris: Split) -> None:
    def run() -> TuningResult:
        return tune(iris.X_train, iris.y_train, task="classification", trainers=FAST, n_trials=6, cv_folds=3,
                    cv_repeats=1, seed=3, try_defaults=False)

    a, b = run(), run()
    assert (a.best_trainer, a.best_params, a.best_score) == (b.best_trainer, b.best_params, b.best_score)
    assert [(r["trainer"], r["params"], r["score"]) for r in a.trials] == [
        (r["trainer"], r["params"], r["score"]) for r in b.trials]
    assert a.ensemble == b.ensemble and a.fit.params == b.fit.params
    c = tune(iris.X_train, iris.y_train, task="classification", trainers=FAST, n_trials=6, cv_folds=3, seed=4,
             cv_repeats=1, try_defaults=False)
    assert [r["params"] for r in c.trials] != [r["params"] for r in a.trials]


def test_timeout_is_honoured(iris: Split) -> None:
    # each trial takes 5 x 0.25 s: the first completes, the second is stopped between folds at the deadline
    result = tune(iris.X_train, iris.y_train, task="classification", trainers=[Sleepy], timeout_s=2.0,
                  cv_repeats=1, try_defaults=False)
    assert result.stop_reason == "timeout"
    assert 2.0 <= result.search_seconds < 2.0 + 0.25 + 1.0  # about one fold fit over the budget, at most
    assert [(r["state"], r["note"]) for r in result.trials] == [("complete", None), ("pruned", "interrupted: timeout")]
    assert result.counts == {"complete": 1, "pruned": 1}


def test_timeout_on_real_trainers(breast_cancer: Split) -> None:
    result = tune(breast_cancer.X_train, breast_cancer.y_train, task="classification", timeout_s=1.5, cv_folds=3,
                  cv_repeats=1)
    assert result.stop_reason == "timeout" and result.counts["complete"] >= 1
    assert "waiting" not in result.counts  # defaults queued but never started are not listed


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"n_trials": 0}, "n_trials"), ({"timeout_s": 0}, "timeout_s"), ({"timeout_s": -1.0}, "timeout_s"),
    ({}, "n_trials"), ({"n_trials": 2, "n_jobs": 0}, "n_jobs"), ({"n_trials": 2, "cv_folds": 1}, "cv_folds"),
    ({"n_trials": 2, "metric": "rmse"}, "metric"), ({"n_trials": 2, "trainers": ["linear_regression"]}, "trainers"),
    ({"n_trials": 2, "trainers": []}, "trainers"), ({"n_trials": 2, "pruner": "hyperband"}, "pruner"),
    ({"n_trials": 2, "trainers": ["xgboost"]}, "trainer"), ({"n_trials": 2, "cv_repeats": 0}, "cv_repeats"),
    ({"n_trials": 2, "cv_repeats": 11}, "cv_repeats"),
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
                  cv_repeats=1, try_defaults=False)
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
                  cv_repeats=1, try_defaults=False)
    pruned = [r for r in result.trials if r["state"] == "pruned"]
    assert pruned, "the median pruner should stop some trials in the bad region"
    assert all(r["params"]["x"] > 0.5 and r["note"] == "pruned after 2 fold(s)" for r in pruned)
    assert result.best_params["x"] <= 0.5
    unpruned = tune(iris.X_train, iris.y_train, task="classification", trainers=[BadRegion], n_trials=8,
                    cv_repeats=1, try_defaults=False, pruner="none")
    assert "pruned" not in unpruned.counts
    halving = tune(iris.X_train, iris.y_train, task="classification", trainers=[BadRegion], n_trials=12,
                   cv_repeats=1, try_defaults=False, pruner="successive_halving")
    assert all(r["params"]["x"] > 0.5 for r in halving.trials if r["state"] == "pruned")


def test_should_stop_and_report(iris: Split) -> None:
    events: list[dict[str, Any]] = []
    result = tune(iris.X_train, iris.y_train, task="classification", trainers=FAST, n_trials=20, cv_folds=3,
                  cv_repeats=1, report=events.append, should_stop=lambda: len(events) >= 3)
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
                 cv_repeats=1, storage=url, study_name="job-1")
    assert first.study_name == "job-1"
    study = optuna.load_study(study_name="job-1", storage=url)
    assert len(study.trials) == 4
    assert study.user_attrs == {"aimaas.task": "classification", "aimaas.metric": "f1_macro"}
    again = tune(iris.X_train, iris.y_train, task="classification", trainers=FAST, n_trials=3, cv_folds=3,
                 cv_repeats=1, storage=url, study_name="job-1")  # resumes: the defaults are not enqueued twice
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
                  n_trials=8, cv_folds=3, cv_repeats=1, pruner="none")
    table = result.importances
    assert table["evaluator"] == "ped_anova" and table["completed"] == 8
    shares = table["by_trainer"]["logistic_regression"]
    assert set(shares) <= {"C", "class_weight"} and sum(shares.values()) == pytest.approx(1.0, abs=1e-3)
    few = tune(iris.X_train, iris.y_train, task="classification", trainers=["logistic_regression"], n_trials=2,
               cv_folds=3, cv_repeats=1)
    assert few.importances["overall"] == {} and "need at least" in few.importances["notes"][0]


def test_threads(iris: Split) -> None:
    result = tune(iris.X_train, iris.y_train, task="classification", trainers=FAST, n_trials=6, cv_folds=3,
                  cv_repeats=1, n_jobs=2)
    _check_result(result, 6)


def test_select_ensemble() -> None:
    y = np.array([0, 1] * 10)
    sure, unsure = np.where(y == 0, 0.9, 0.1), np.where(y == 0, 0.45, 0.55)
    half = np.arange(20) < 10
    a, b = np.where(half, sure, unsure), np.where(half, unsure, sure)  # P(class 0)
    a, b, wrong = (np.column_stack([p, 1 - p]) for p in (a, b, 1 - sure))
    # a is right on the first half only, b on the second half only: their average is right everywhere
    counts, score, single = select_ensemble("accuracy", y, [0, 1], [(7, wrong), (3, a), (5, b)])
    assert counts == {3: 1, 5: 1} and score == 1.0 and single == 0.5
    perfect = np.column_stack([sure, 1 - sure])
    assert select_ensemble("accuracy", y, [0, 1], [(1, perfect), (2, a)]) == ({1: 1}, 1.0, 1.0)
    values = np.array([1.0, 2.0, 3.0, 4.0])
    counts, score, _ = select_ensemble("rmse", values, None, [(0, values[:, None] + 1), (1, values[:, None] - 1)])
    assert counts == {0: 1, 1: 1} and score == 0.0


def _frozen(number: int, trainer: str, value: float, folds: list[float], default: bool = False) -> Any:
    from optuna.distributions import CategoricalDistribution

    trial = optuna.trial.create_trial(
        value=value, params={"trainer": trainer}, user_attrs={"fold_scores": folds},
        distributions={"trainer": CategoricalDistribution(["lightgbm", "logistic_regression", "random_forest"])},
        system_attrs={"fixed_params": {"trainer": trainer}} if default else {})
    trial.number = number
    return trial


def test_one_standard_error_rule() -> None:
    best = _frozen(5, "lightgbm", 0.90, [0.85, 0.95, 0.90, 0.88, 0.92])  # corrected standard error 0.026
    forest = _frozen(2, "random_forest", 0.886, [0.886] * 5, True)
    linear = _frozen(0, "logistic_regression", 0.884, [0.884] * 5, True)
    tuned_linear = _frozen(7, "logistic_regression", 0.895, [0.9] * 5)
    # within one standard error: defaults before tuned trials, the linear default first
    assert choose_single([best, forest, linear, tuned_linear], maximize=True) is linear
    assert choose_single([best, forest, tuned_linear], maximize=True) is forest
    assert choose_single([best, tuned_linear], maximize=True) is tuned_linear
    far = _frozen(1, "logistic_regression", 0.87, [0.87] * 5, True)
    assert choose_single([best, far], maximize=True) is best
    assert choose_single([best, far], maximize=True, folds=2) is far  # 1/n + 1/(k-1): 2-fold scores vary more
    lowest = _frozen(3, "lightgbm", 10.0, [9.0, 11.0, 10.0, 10.5, 9.5])
    assert choose_single([lowest, _frozen(4, "random_forest", 10.2, [10.2] * 5, True)], maximize=False).number == 4
    assert choose_single([lowest, _frozen(4, "random_forest", 10.8, [10.8] * 5, True)], maximize=False) is lowest


def test_native_threads_per_fit() -> None:
    cpus = len(os.sched_getaffinity(0))
    assert trial_threads(5_000, 1) == 1  # small tables: one thread, whatever the machine
    assert trial_threads(50_000, 1) == cpus and trial_threads(50_000, 2 * cpus) == 1


def test_bootstrap_confidence() -> None:
    y = np.array([0, 1] * 50)
    right = np.column_stack([y == 0, y == 1]).astype(np.float32)
    half = right.copy()
    half[::4] = 1 - half[::4]  # wrong on a quarter of the rows
    assert confidence("accuracy", y, [0, 1], right, half) == 1.0
    assert confidence("accuracy", y, [0, 1], half, half) == 0.0
    assert confidence("accuracy", y, [0, 1], half, right) == 0.0


def test_repeated_folds(iris: Split) -> None:
    data = TuningData.build(iris.X_train, iris.y_train, task=TaskKind.CLASSIFICATION, schema=None, cv_folds=4,
                            seed=0, cv_repeats=2)
    assert data.n_steps == 8 and data.cv["repeats"] == 2 and data.classes == [0, 1, 2]
    for repeat in (data.folds[:4], data.folds[4:]):  # each repeat scores every row once
        assert sorted(np.concatenate([score for _, score in repeat]).tolist()) == list(range(len(iris.X_train)))
    assert not np.array_equal(data.folds[0][1], data.folds[4][1])
    assert [auto_repeats(n) for n in (100, 500, 501, 1000, 1001)] == [3, 3, 2, 2, 1]


def test_ensemble_trainer(messy_classification: Split, messy_regression: Split) -> None:
    ensemble = get_trainer("ensemble")
    for data, task, linear in ((messy_classification, "classification", "logistic_regression"),
                               (messy_regression, "regression", "linear_regression")):
        model = ensemble(task=task, members=[{"trainer": linear, "params": {}, "weight": 3},
                                             {"trainer": "lightgbm", "params": {"n_estimators": 20}, "weight": 1}])
        fit = model.fit(data.X_train, data.y_train, schema=data.schema)
        assert [m["weight"] for m in fit.extra["members"]] == [0.75, 0.25]
        assert "comment" not in fit.features and any(d["name"] == "comment" for d in fit.dropped)
        report = parity(model, model.export_onnx(data.X_test.head()), data.X_test)
        if task == "classification":  # string classes: the graph's label output gathers them
            assert model.classes == ["churn", "stay"] and report["label_agreement"] == 1.0
            assert report["max_abs_diff_proba"] < 1e-5
        else:
            assert report["max_rel_diff"] < 1e-5
    for members in ([], [{"trainer": "logistic_regression", "weight": 0}], [{"trainer": "ensemble"}],
                    [{"trainer": "linear_regression"}]):
        with pytest.raises(InvalidInput) as info:
            ensemble(task="classification", members=members).fit(messy_classification.X_train,
                                                                   messy_classification.y_train)
        assert info.value.param == "members"


def test_import_stays_cheap() -> None:
    code = ("import sys, aimaas.training.tuning; print([m for m in ('optuna', 'sklearn', 'lightgbm', 'scipy') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert TaskKind.CLASSIFICATION.value == "classification"
