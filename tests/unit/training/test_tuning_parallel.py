"""AutoML trials in worker processes: a shared study, reports, cancellation, dead workers, SQLite and PostgreSQL.

Each search here spawns 2 fresh interpreters (about 2 s of start-up on a busy 2-core machine), so the tests
share searches where they can. The trainers below are defined at module level: the workers import them by
``module:QualName``.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from aimaas.errors import InvalidInput
from aimaas.training.base import TrialLike
from aimaas.training.sklearn_trainers import LogisticRegressionTrainer
from aimaas.training.tuning import evaluate_on_test, tune

from .conftest import Split

optuna = pytest.importorskip("optuna")

FAST = {"cv_folds": 3, "cv_repeats": 1}


class Slow(LogisticRegressionTrainer):
    """Logistic regression that takes at least 0.2 s per fit, so that both workers get trials even when one
    starts a few seconds after the other."""

    name = "slow"

    def _fit_estimator(self, estimator: Any, X: Any, y: Any, valid: Any, report: Any) -> dict[str, Any]:
        time.sleep(0.2)
        return super()._fit_estimator(estimator, X, y, valid, report)


class Stuck(LogisticRegressionTrainer):
    """A fit that takes a minute: its worker must be terminated to stop. It first touches the file named by
    AIMAAS_TEST_STUCK (the workers inherit the test's environment)."""

    name = "stuck"

    def _fit_estimator(self, estimator: Any, X: Any, y: Any, valid: Any, report: Any) -> dict[str, Any]:
        Path(os.environ["AIMAAS_TEST_STUCK"]).touch()
        time.sleep(60)
        return super()._fit_estimator(estimator, X, y, valid, report)

    @classmethod
    def search_space(cls, trial: TrialLike) -> dict[str, Any]:
        return {}


class Killed(LogisticRegressionTrainer):
    """A fit that SIGKILLs its own process, as the OOM killer would."""

    name = "killed"

    def _fit_estimator(self, estimator: Any, X: Any, y: Any, valid: Any, report: Any) -> dict[str, Any]:
        os.kill(os.getpid(), signal.SIGKILL)
        return {}

    @classmethod
    def search_space(cls, trial: TrialLike) -> dict[str, Any]:
        return {}


class Invalid(LogisticRegressionTrainer):
    name = "invalid"

    def _make_estimator(self) -> Any:
        raise InvalidInput("no usable column", param="features")


def _pids(url: str, name: str) -> list[int]:
    study = optuna.load_study(study_name=name, storage=url)
    return [t.user_attrs["aimaas.worker"]["pid"] for t in study.trials]


def test_trials_run_in_two_processes_on_sqlite(iris: Split, tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    events: list[dict[str, Any]] = []
    result = tune(iris.X_train, iris.y_train, task="classification", trainers=["logistic_regression", Slow],
                  n_trials=8, n_workers=2, storage=url, study_name="job-p", report=events.append, **FAST)
    assert len(result.trials) == 8 and result.stop_reason == "n_trials"
    assert sorted(e["number"] for e in events) == list(range(8))  # each finished trial reported once
    assert [e["finished"] for e in events] == list(range(1, 9))
    assert all(e["event"] == "trial" and "best_score" in e for e in events)
    assert result.best_score == max(r["score"] for r in result.trials if r["state"] == "complete")
    assert [w["exitcode"] for w in result.workers] == [0, 0]
    assert 0 < result.startup_seconds < 30
    pids = _pids(url, "job-p")
    assert len(set(pids)) == 2 and os.getpid() not in pids
    assert {w["pid"] for w in result.workers} == set(pids)
    assert evaluate_on_test(result, iris.X_test, iris.y_test)["score"] > 0.85
    # the study persists: a later in-process call resumes it
    again = tune(iris.X_train, iris.y_train, task="classification", trainers=["logistic_regression", Slow],
                 n_trials=1, storage=url, study_name="job-p", **FAST)
    assert len(again.trials) == 9 and _pids(url, "job-p")[-1] == os.getpid()


def test_postgres_storage(iris: Split, postgres_url: str) -> None:
    result = tune(iris.X_train, iris.y_train, task="classification", trainers=["logistic_regression", Slow],
                  n_trials=6, n_workers=2, storage=postgres_url, study_name="job-pg", **FAST)
    assert result.counts.get("complete", 0) >= 4 and len(result.trials) == 6
    study = optuna.load_study(study_name="job-pg", storage=postgres_url)
    assert len(study.trials) == 6 and study.user_attrs["aimaas.metric"] == "f1_macro"
    assert len({t.user_attrs["aimaas.worker"]["pid"] for t in study.trials}) == 2


def test_cancellation_stops_workers_within_seconds(iris: Split, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # the defaults go first: one worker completes logistic regression, the other is stuck in a minute-long fit
    stuck_file = tmp_path / "stuck"
    monkeypatch.setenv("AIMAAS_TEST_STUCK", str(stuck_file))
    events: list[dict[str, Any]] = []
    cancelled_at: list[float] = []
    started = time.monotonic()

    def should_stop() -> bool:  # once a trial completed and the stuck fit is under way (30 s at most)
        if (events and stuck_file.exists() or time.monotonic() - started > 30) and not cancelled_at:
            cancelled_at.append(time.monotonic())
        return bool(cancelled_at)

    result = tune(iris.X_train, iris.y_train, task="classification", trainers=["logistic_regression", Stuck],
                  n_trials=50, n_workers=2, report=events.append, should_stop=should_stop, **FAST)
    assert time.monotonic() - cancelled_at[0] < 8  # a 2 s grace, then SIGTERM
    assert result.stop_reason == "cancelled" and result.best_trainer == "logistic_regression"
    stuck = [r for r in result.trials if r["trainer"] == "stuck"]
    assert stuck and all((r["state"], r["note"]) == ("pruned", "interrupted: cancelled") for r in stuck)
    assert any("grace" in str(w["note"]) for w in result.workers)
    assert result.trainer.classes == [0, 1, 2]


def test_a_killed_worker_does_not_hang_the_search(iris: Split) -> None:
    started = time.monotonic()
    result = tune(iris.X_train, iris.y_train, task="classification", trainers=["logistic_regression", Killed],
                  n_trials=6, n_workers=2, ensemble=False, **FAST)
    assert time.monotonic() - started < 60
    failed = [r for r in result.trials if r["state"] == "fail"]
    assert failed and all(r["trainer"] == "killed" and "killed by signal 9" in r["note"] for r in failed)
    assert result.counts["complete"] >= 1 and result.best_trainer == "logistic_regression"
    assert result.stop_reason in ("n_trials", "workers_lost")
    assert any(w["exitcode"] == -signal.SIGKILL for w in result.workers)


def test_timeout_and_mixed_columns(messy_classification: Split) -> None:
    data = messy_classification  # strings with gaps, nullable integers, booleans, dates: through Parquet
    result = tune(data.X_train, data.y_train, task="classification", schema=data.schema, timeout_s=4.0,
                  n_workers=2, trainers=["logistic_regression", "hist_gradient_boosting"], **FAST)
    assert result.stop_reason == "timeout" and result.counts["complete"] >= 1
    assert result.search_seconds < 4.0 + 5.0 + 10.0  # the budget, the timeout grace, a slow start-up
    assert "running" not in result.counts
    assert evaluate_on_test(result, data.X_test, data.y_test)["score"] > 0.6


def test_worker_errors_come_back(iris: Split) -> None:
    with pytest.raises(InvalidInput, match="no usable column") as info:
        tune(iris.X_train, iris.y_train, task="classification", trainers=[Invalid], n_trials=3, n_workers=2,
             **FAST)
    assert info.value.param == "features"


def test_invalid_parallel_input(iris: Split) -> None:
    class Local(LogisticRegressionTrainer):
        name = "local"

    cases: list[tuple[dict[str, Any], str]] = [
        ({"n_workers": 0}, "n_workers"), ({"n_workers": 2, "n_jobs": 2}, "n_jobs"),
        ({"n_workers": 2, "storage": optuna.storages.InMemoryStorage()}, "storage"),
        ({"n_workers": 2, "trainers": [Local]}, "trainers"), ({"trainers": ["ensemble"]}, "trainers"),
    ]
    for kwargs, param in cases:
        with pytest.raises(InvalidInput) as info:
            tune(iris.X_train, iris.y_train, task="classification", n_trials=2, **kwargs)
        assert info.value.param == param, kwargs
