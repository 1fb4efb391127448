"""AutoML benchmark: aimaas ``tune`` with a wall-time budget against scikit-learn defaults, on one split.

For iris, wine, breast_cancer, digits (8x8 pixels as 64 numeric columns) and diabetes, one fixed train/test
split (75/25, seed 0, stratified for classification). The defaults are LogisticRegression(max_iter=1000) in
a StandardScaler pipeline, RandomForest and HistGradientBoosting (Ridge, RandomForest and
HistGradientBoosting regressors for diabetes), each fitted on the train rows. aimaas tunes on the same
train rows (tune's defaults: 5-fold CV, repeated on small tables; an ensemble of the best trials when it
wins out of fold) with a budget in seconds and ``--workers`` worker processes; its final model is scored
once on the test rows. The metric is tune's default: f1_macro (classification) or r2 (regression).

"best default on test" is the best of the three defaults *on the test rows*, an optimistic baseline: a user
has to choose without seeing the test rows. "default picked by CV" is that fair choice: the default with the
best mean 5-fold CV score on the train rows, scored on the test rows.

Then, on ``--speed-dataset``: trials/minute with 1 and 2 workers within a ``--speed-budget`` (the trainers
drawn differ), the same work timed with 1 and 2 workers (``--same-work-trials`` trials of the random forest's
and of HistGradientBoosting's defaults), with the CPU cores the runs actually got, and tune's own start-up:
the seconds from the call to the first trial running. The load average is printed at the start and the end:
on a machine shared with other work, the workers cannot get more CPU than is left.

``--split-seed`` picks another train/test split, for trying changes without looking at the reported split.

    python benchmarks/automl.py [--budget 60] [--workers 2] [--quick] [--speed-dataset breast_cancer]
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

from aimaas.training import get_trainer
from aimaas.training.tuning import evaluate_on_test, tune

SPEED_TRAINERS = ("logistic_regression", "random_forest", "hist_gradient_boosting", "lightgbm")
# Each trainer with its defaults only (an empty search space), defined at module level so that worker processes
# can import them: every trial of one of these does the same work.
for _name in SPEED_TRAINERS:
    globals()[f"Fixed_{_name}"] = type(f"Fixed_{_name}", (get_trainer(_name),),
                                       {"search_space": classmethod(lambda cls, trial: {}), "__module__": __name__})

DATASETS = {
    "iris": ("load_iris", "classification"),
    "wine": ("load_wine", "classification"),
    "breast_cancer": ("load_breast_cancer", "classification"),
    "digits": ("load_digits", "classification"),
    "diabetes": ("load_diabetes", "regression"),
}


def load(name: str, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series, str]:
    """The dataset's fixed split: X_train, X_test, y_train, y_test and the task."""
    import sklearn.datasets
    from sklearn.model_selection import train_test_split

    loader, task = DATASETS[name]
    X, y = getattr(sklearn.datasets, loader)(return_X_y=True, as_frame=True)
    stratify = y if task == "classification" else None
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=seed,
                                                        stratify=stratify)
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


def _cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished children (the worker processes)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_tune(X_train: pd.DataFrame, X_test: pd.DataFrame, y_train: pd.Series, y_test: pd.Series, task: str,
             budget: float, n_workers: int) -> dict[str, Any]:
    started, cpu = time.perf_counter(), _cpu_seconds()
    result = tune(X_train, y_train, task=task, timeout_s=budget, n_workers=n_workers, seed=0)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    test = evaluate_on_test(result, X_test, y_test)
    finished = len(result.trials)
    picked = result.trainer.name
    if result.ensemble and result.ensemble["used"]:
        picked = "ensemble: " + " + ".join(f"{m['trainer']} {m['weight']:.2f}" for m in result.ensemble["members"])
    return {"score": test["score"], "metric": result.metric, "trainer": picked, "trials": finished,
            "counts": result.counts, "seconds": seconds, "search_seconds": result.search_seconds,
            "per_minute": finished / result.search_seconds * 60, "cv": result.best_score,
            "startup": result.startup_seconds, "cores": cpu / seconds}


def same_work_speed(X_train: pd.DataFrame, y_train: pd.Series, task: str, n_trials: int) -> str:
    """Trials/minute with 1 and 2 workers on the same work: ``n_trials`` trials of one trainer's defaults (5-fold
    CV, no repeats, no pruning, no ensemble), for the two trainers whose trials take longest. The time runs
    from the call to the end of the search, so the workers' start-up counts; "cores" is the CPU time this
    process and its workers got per second of it (2 at most on 2 CPUs; less when other work competes)."""
    parts = []
    for name in ("random_forest", "hist_gradient_boosting"):
        rates, cores = [], []
        for n_workers in (1, 2):
            cpu = _cpu_seconds()
            result = tune(X_train, y_train, task=task, trainers=[globals()[f"Fixed_{name}"]], n_trials=n_trials,
                          n_workers=n_workers, cv_repeats=1, pruner="none", try_defaults=False, ensemble=False)
            rates.append(n_trials / result.search_seconds * 60)
            cores.append((_cpu_seconds() - cpu) / (result.search_seconds + result.refit_seconds))
        parts.append(f"{name} {rates[0]:.0f} -> {rates[1]:.0f} (x{rates[1] / rates[0]:.2f}; cores used "
                     f"{cores[0]:.2f} -> {cores[1]:.2f})")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of search per dataset (default 60)")
    parser.add_argument("--workers", type=int, default=2, help="tune's n_workers for the table (default 2)")
    parser.add_argument("--quick", action="store_true", help="a 10 s budget")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated subset")
    parser.add_argument("--split-seed", type=int, default=0, help="train/test split seed (reported: 0)")
    parser.add_argument("--speed-dataset", default="breast_cancer", help="trials/minute dataset ('' skips)")
    parser.add_argument("--speed-budget", type=float, default=30.0, help="seconds of each trials/minute run")
    parser.add_argument("--same-work-trials", type=int, default=40,
                        help="trials of a trainer's defaults timed with 1 and 2 workers")
    args = parser.parse_args()
    budget = 10.0 if args.quick else args.budget

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    versions = ", ".join(f"{p} {importlib.metadata.version(p)}" for p in ("optuna", "scikit-learn", "lightgbm"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; {versions}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"budget: {budget:g} s of search per dataset, {args.workers} worker process(es); test = 25% "
          f"(seed {args.split_seed}, stratified)\n")

    rows = []
    per_dataset: dict[str, dict[str, Any]] = {}
    verdicts = []
    for name in [d for d in args.datasets.split(",") if d]:
        X_train, X_test, y_train, y_test, task = load(name, args.split_seed)
        base = default_scores(X_train, X_test, y_train, y_test, task)
        best_default = max(base, key=lambda k: base[k])
        picked = cv_pick(X_train, y_train, task)
        ours = per_dataset[name] = run_tune(X_train, X_test, y_train, y_test, task, budget, args.workers)
        counts = ours["counts"]
        extra = ", ".join(f"{counts[s]} {s}" for s in ("pruned", "fail") if counts.get(s))
        all_defaults = " / ".join(f"{v:.3f}" for v in base.values())
        # scores are compared as printed (4 decimals): a difference below that is a tie
        delta = round(ours["score"], 4) - round(base[best_default], 4)
        verdicts.append("better" if delta > 0 else "tie" if delta == 0 else "worse")
        rows.append(f"| {name} | {len(X_train)}/{len(X_test)} | {ours['metric']} | {base[best_default]:.4f} "
                    f"({best_default}) | {base[picked]:.4f} ({picked}) | {all_defaults} | {ours['score']:.4f} "
                    f"({ours['trainer']}) | {verdicts[-1]} | {ours['cv']:.4f} | {ours['trials']}"
                    f"{f' ({extra})' if extra else ''} | {ours['search_seconds']:.1f} + "
                    f"{ours['seconds'] - ours['search_seconds']:.1f} |")
        print(f"  {name}: done in {ours['seconds']:.1f} s", flush=True)

    print("\n| dataset | train/test rows | metric | best default on test (which) | default picked by CV (which) "
          "| defaults (logreg or ridge / rf / hgb) | aimaas test score (final model) | vs best default "
          "| aimaas best CV score | trials | seconds (search + final fit & test) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if per_dataset:
        scores = np.array([per_dataset[d]["score"] for d in per_dataset])
        print(f"\nmean aimaas test score over {len(scores)} datasets: {scores.mean():.4f}; against the best default "
              f"on test: {verdicts.count('better')} better, {verdicts.count('tie')} tied, "
              f"{verdicts.count('worse')} worse")

    name = args.speed_dataset
    if name:
        X_train, X_test, y_train, y_test, task = load(name, args.split_seed)
        runs = {n: run_tune(X_train, X_test, y_train, y_test, task, args.speed_budget, n) for n in (1, 2)}
        one, two = runs[1], runs[2]
        print(f"\ntrials/minute on {name} within {args.speed_budget:g} s: 1 worker {one['per_minute']:.0f} "
              f"({one['trials']} trials, {one['cores']:.2f} cores used), 2 workers {two['per_minute']:.0f} "
              f"({two['trials']} trials, {two['cores']:.2f} cores used), x{two['per_minute'] / one['per_minute']:.2f};"
              " the trainers drawn differ")
        print(f"trials/minute on {name}, same work ({args.same_work_trials} trials of a trainer's defaults), "
              f"1 -> 2 workers: {same_work_speed(X_train, y_train, task, args.same_work_trials)}")
        print(f"tune start-up (call -> first trial running): 1 worker (in process) {one['startup']:.2f} s, "
              f"2 worker processes {two['startup']:.2f} s")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[1]:.1f} (5 min) on "
          f"{os.cpu_count()} CPUs; above the CPU count, other work competed for them")


if __name__ == "__main__":
    main()
