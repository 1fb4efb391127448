"""AutoML benchmark: aimaas ``tune`` with a wall-time budget against scikit-learn defaults, on one split.

For iris, wine, breast_cancer, digits (8x8 pixels as 64 numeric columns) and diabetes, one fixed train/test
split (75/25, seed 0, stratified for classification). The defaults are LogisticRegression(max_iter=1000) in
a StandardScaler pipeline, RandomForest and HistGradientBoosting (Ridge, RandomForest and
HistGradientBoosting regressors for diabetes), each fitted on the train rows. aimaas tunes on the same
train rows (5-fold CV, budget in seconds) and its refitted best model is scored once on the test rows.
The metric is tune's default: f1_macro (classification) or r2 (regression).

"best default on test" is the best of the three defaults *on the test rows*, an optimistic baseline: a user
has to choose without seeing the test rows. "default picked by CV" is that fair choice: the default with the
best mean 5-fold CV score on the train rows, scored on the test rows.

    python benchmarks/automl.py [--budget 60] [--quick] [--parallel-dataset breast_cancer]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import time
from typing import Any

import numpy as np
import pandas as pd

from aimaas.training.tuning import evaluate_on_test, tune

DATASETS = {
    "iris": ("load_iris", "classification"),
    "wine": ("load_wine", "classification"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "digits": ("load_digits", "classification"),
    "diabetes": ("load_diabetes", "regression"),
}


def load(name: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series, str]:
    """The dataset's fixed split: X_train, X_test, y_train, y_test and the task."""
    import sklearn.datasets
    from sklearn.model_selection import train_test_split

    loader, task = DATASETS[name]
    X, y = getattr(sklearn.datasets, loader)(return_X_y=True, as_frame=True)
    stratify = y if task == "classification" else None
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=stratify)
    return X_train, X_test, y_train, y_test, task


def defaults(task: str) -> dict[str, Any]:
    """scikit-learn's three default models for the task, by short name."""
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if task == "classification":
        return {"logreg": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
                "rf": RandomForestClassifier(random_state=0), "hgb": HistGradientBoostingClassifier(random_state=0)}
    return {"ridge": make_pipeline(StandardScaler(), Ridge()), "rf": RandomForestRegressor(random_state=0),
            "hgb": HistGradientBoostingRegressor(random_state=0)}


def default_scores(X_train: pd.DataFrame, X_test: pd.DataFrame, y_train: pd.Series, y_test: pd.Series,
                   task: str) -> dict[str, float]:
    """Test f1_macro (classification) or r2 (regression) of each default model fitted on the train rows."""
    from sklearn.metrics import f1_score, r2_score

    out = {}
    for name, model in defaults(task).items():
        pred = model.fit(X_train, y_train).predict(X_test)
        out[name] = float(f1_score(y_test, pred, average="macro") if task == "classification"
                          else r2_score(y_test, pred))
    return out


def cv_pick(X_train: pd.DataFrame, y_train: pd.Series, task: str) -> str:
    """The default model a user would pick without tuning: the best mean 5-fold CV score on the train rows."""
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

    cv = (StratifiedKFold if task == "classification" else KFold)(n_splits=5, shuffle=True, random_state=0)
    scoring = "f1_macro" if task == "classification" else "r2"
    means = {name: float(cross_val_score(model, X_train, y_train, cv=cv, scoring=scoring).mean())
             for name, model in defaults(task).items()}
    return max(means, key=lambda k: means[k])


def run_tune(X_train: pd.DataFrame, X_test: pd.DataFrame, y_train: pd.Series, y_test: pd.Series, task: str,
             budget: float, n_jobs: int) -> dict[str, Any]:
    started = time.perf_counter()
    result = tune(X_train, y_train, task=task, timeout_s=budget, n_jobs=n_jobs, seed=0)
    seconds = time.perf_counter() - started
    test = evaluate_on_test(result, X_test, y_test)
    finished = len(result.trials)
    return {"score": test["score"], "metric": result.metric, "trainer": result.best_trainer, "trials": finished,
            "counts": result.counts, "seconds": seconds, "search_seconds": result.search_seconds,
            "per_minute": finished / result.search_seconds * 60, "cv": result.best_score}


def same_work_speed(X_train: pd.DataFrame, y_train: pd.Series, task: str, n_trials: int) -> str:
    """Trials/minute for n_jobs=1 and 2 on the same work: for each trainer, ``n_trials`` trials that all fit
    its defaults (an empty search space), 5-fold CV, no pruning. The budget runs above mix trainers
    differently with 1 and 2 threads, so their trials/minute are not comparable on their own."""
    from aimaas.training import get_trainer, trainers_for

    parts = []
    for name in trainers_for(task):
        fixed = type(f"Fixed_{name}", (get_trainer(name),), {"search_space": classmethod(lambda cls, trial: {})})
        rates = []
        for n_jobs in (1, 2):
            started = time.perf_counter()
            result = tune(X_train, y_train, task=task, trainers=[fixed], n_trials=n_trials, n_jobs=n_jobs,
                          pruner="none", try_defaults=False)
            rates.append(n_trials / (time.perf_counter() - started - result.refit_seconds) * 60)
        parts.append(f"{name} {rates[0]:.0f} -> {rates[1]:.0f} (x{rates[1] / rates[0]:.2f})")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of search per dataset (default 60)")
    parser.add_argument("--quick", action="store_true", help="a 10 s budget")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated subset")
    parser.add_argument("--parallel-dataset", default="breast_cancer",
                        help="dataset re-tuned with n_jobs=2 for the trials/minute line")
    parser.add_argument("--same-work-trials", type=int, default=8,
                        help="trials of each trainer's defaults timed with n_jobs=1 and 2")
    args = parser.parse_args()
    budget = 10.0 if args.quick else args.budget

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    versions = ", ".join(f"{p} {importlib.metadata.version(p)}" for p in ("optuna", "scikit-learn", "lightgbm"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; {versions}")
    print(f"budget: {budget:g} s of search per dataset, 5-fold CV; test = 25% (seed 0, stratified)\n")

    rows = []
    per_dataset: dict[str, dict[str, Any]] = {}
    for name in args.datasets.split(","):
        X_train, X_test, y_train, y_test, task = load(name)
        base = default_scores(X_train, X_test, y_train, y_test, task)
        best_default = max(base, key=lambda k: base[k])
        picked = cv_pick(X_train, y_train, task)
        ours = per_dataset[name] = run_tune(X_train, X_test, y_train, y_test, task, budget, n_jobs=1)
        counts = ours["counts"]
        extra = ", ".join(f"{counts[s]} {s}" for s in ("pruned", "fail") if counts.get(s))
        all_defaults = " / ".join(f"{v:.3f}" for v in base.values())
        rows.append(f"| {name} | {len(X_train)}/{len(X_test)} | {ours['metric']} | {base[best_default]:.4f} "
                    f"({best_default}) | {base[picked]:.4f} ({picked}) | {all_defaults} | {ours['score']:.4f} "
                    f"({ours['trainer']}) | {ours['cv']:.4f} | {ours['trials']}{f' ({extra})' if extra else ''} "
                    f"| {ours['search_seconds']:.1f} + {ours['seconds'] - ours['search_seconds']:.1f} |")
        print(f"  {name}: done in {ours['seconds']:.1f} s", flush=True)

    print("\n| dataset | train/test rows | metric | best default on test (which) | default picked by CV (which) "
          "| defaults (logreg or ridge / rf / hgb) | aimaas test score (picked) | aimaas CV score | trials "
          "| seconds (search + refit & test) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))

    name = args.parallel_dataset
    if name in per_dataset:
        X_train, X_test, y_train, y_test, task = load(name)
        two = run_tune(X_train, X_test, y_train, y_test, task, budget, n_jobs=2)
        one = per_dataset[name]
        print(f"\ntrials/minute on {name} within the {budget:g} s budget: n_jobs=1 {one['per_minute']:.0f} "
              f"({one['trials']} trials), n_jobs=2 {two['per_minute']:.0f} ({two['trials']} trials; "
              f"test {two['metric']} {two['score']:.4f}, picked {two['trainer']}); the trainers drawn differ")
        print(f"trials/minute on {name}, same work ({args.same_work_trials} trials of each trainer's defaults), "
              f"n_jobs=1 -> 2: {same_work_speed(X_train, y_train, task, args.same_work_trials)}")
    scores = np.array([per_dataset[d]["score"] for d in per_dataset])
    print(f"\nmean aimaas test score over {len(scores)} datasets: {scores.mean():.4f}")


if __name__ == "__main__":
    main()
