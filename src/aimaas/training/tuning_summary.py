"""What a finished tuning study yields: one JSON-safe row per trial, hyperparameter importances, and the
ensemble chosen from the trials' out-of-fold predictions.

Importances use Optuna's PED-ANOVA evaluator, which in Optuna 5 handles conditional (hierarchical) search
spaces: ``overall`` ranks ``trainer`` against every trainer's own hyperparameters, ``by_trainer`` ranks each
trainer's hyperparameters on its own completed trials. With too few completed trials the entry is left out
and ``notes`` says why.

The ensemble is Caruana et al.'s greedy selection with replacement ("Ensemble selection from libraries of
models", ICML 2004), as auto-sklearn and AutoGluon use it: starting from the best single trial, add the
trial whose out-of-fold predictions most improve the averaged predictions' score, again and again, and keep
the best prefix. Averaging a few good, different models cancels part of each one's errors; choosing by the
out-of-fold score of the *average* avoids picking one model for a lucky CV mean. optuna is imported on use.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aimaas.errors import InvalidInput
from aimaas.training.base import FitResult, TaskKind, Trainer, get_trainer
from aimaas.training.tuning_data import METRICS, TuningData, prediction_score
from aimaas.training.tuning_objective import TRAINER_PARAM, unprefixed

if TYPE_CHECKING:
    import optuna

__all__ = ["CONFIDENCE", "MIN_TRIALS_FOR_IMPORTANCE", "POOL_LIMIT", "SIMPLE_TRAINERS", "OofStore", "choose_single",
           "confidence", "ensemble_pool", "final_model", "importances", "select_ensemble", "trial_row"]

MIN_TRIALS_FOR_IMPORTANCE = 4
"""Completed trials needed before importances are computed (for the whole study, and for each trainer)."""


def _safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        return _safe(value.item())
    return value


def trial_row(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """``{"number", "trainer", "params", "score", "state", "duration_s", "note"}`` for one trial. The score of
    a pruned trial is its last running mean; ``note`` gives the error, the interruption or "trainer
    defaults" for the trials enqueued with a trainer's defaults."""
    trainer = trial.params.get(TRAINER_PARAM)
    value: Any = trial.value
    if value is None and trial.intermediate_values:
        value = trial.intermediate_values[max(trial.intermediate_values)]
    attrs = trial.user_attrs
    note = attrs.get("error") or ("interrupted: " + str(attrs["interrupted"]) if "interrupted" in attrs else None)
    if note is None and trial.state.name == "PRUNED":
        note = f"pruned after {len(attrs.get('fold_scores', []))} fold(s)"
    if note is None and trial.system_attrs.get("fixed_params"):
        note = "trainer defaults"
    duration = trial.duration.total_seconds() if trial.duration is not None else None
    return {
        "number": trial.number,
        "trainer": trainer,
        "params": {k: _safe(v) for k, v in unprefixed(trainer, trial.params).items()},
        "score": _safe(float(value)) if value is not None else None,
        "state": trial.state.name.lower(),
        "duration_s": round(duration, 4) if duration is not None else None,
        "note": note,
    }


def _evaluator(n: int) -> Any:
    from optuna.importance import PedAnovaImportanceEvaluator

    # the top quantile holds about 5 trials (PED-ANOVA's advice), between the top 10% and the top half
    return PedAnovaImportanceEvaluator(target_quantile=min(0.5, max(0.1, 5 / n)))


def _compute(study: optuna.Study, n: int) -> dict[str, float]:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "too few trials", experimental features
        raw = optuna.importance.get_param_importances(study, evaluator=_evaluator(n))
    return {k: round(float(v), 4) for k, v in raw.items() if math.isfinite(v) and v > 0}


def importances(study: optuna.Study) -> dict[str, Any]:
    """``{"evaluator", "completed", "overall": {param: share}, "by_trainer": {trainer: {param: share}},
    "notes"}``; shares sum to 1 in each table, highest first, and parameters with no measurable importance
    are left out. ``overall`` keys are the study's names (``trainer``, ``"<trainer>.<param>"``). Never
    raises: a failure becomes a note."""
    import optuna
    from optuna.trial import TrialState

    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    out: dict[str, Any] = {"evaluator": "ped_anova", "completed": len(completed), "overall": {},
                           "by_trainer": {}, "notes": []}
    if len(completed) < MIN_TRIALS_FOR_IMPORTANCE:
        out["notes"].append(f"{len(completed)} completed trial(s); importances need at least "
                            f"{MIN_TRIALS_FOR_IMPORTANCE}.")
        return out
    try:
        out["overall"] = _compute(study, len(completed))
    except Exception as exc:  # importance is a nicety: never fail a tuning run for it
        out["notes"].append(f"overall importances unavailable: {type(exc).__name__}: {exc}"[:300])
    by_trainer: dict[str, list[optuna.trial.FrozenTrial]] = {}
    for trial in completed:
        by_trainer.setdefault(str(trial.params.get(TRAINER_PARAM)), []).append(trial)
    for name, trials in sorted(by_trainer.items()):
        if len(trials) < MIN_TRIALS_FOR_IMPORTANCE:
            out["notes"].append(f"{name}: {len(trials)} completed trial(s); importances need at least "
                                f"{MIN_TRIALS_FOR_IMPORTANCE}.")
            continue
        if not any(k != TRAINER_PARAM for k in trials[0].params):
            continue  # no hyperparameters searched
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sub = optuna.create_study(direction=study.direction)
                sub.add_trials(trials)
            shares = _compute(sub, len(trials))
        except Exception as exc:
            out["notes"].append(f"{name}: importances unavailable: {type(exc).__name__}: {exc}"[:300])
            continue
        out["by_trainer"][name] = {k.split(".", 1)[1] if k.startswith(f"{name}.") else k: v
                                   for k, v in shares.items() if k != TRAINER_PARAM}
    return out


class OofStore:
    """Out-of-fold predictions of completed trials: one ``<trial number>.npy`` file each in ``directory``,
    written to a temporary name then renamed (a reader never sees half a file), read with
    ``allow_pickle=False``. Shared by the worker processes of a search through the file system."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def save(self, number: int, predictions: np.ndarray) -> None:
        """Store one trial's predictions (called by the objective, in any process)."""
        temporary = self.directory / f".{number}.{os.getpid()}.tmp"
        with open(temporary, "wb") as f:
            np.save(f, np.ascontiguousarray(predictions), allow_pickle=False)
        os.replace(temporary, self.directory / f"{number}.npy")

    def load(self, number: int) -> np.ndarray | None:
        """A trial's predictions, or None when they were not stored (or were pruned)."""
        try:
            return np.asarray(np.load(self.directory / f"{number}.npy", allow_pickle=False))
        except FileNotFoundError:
            return None

    def numbers(self) -> set[int]:
        """The trials whose predictions are stored."""
        return {int(p.stem) for p in self.directory.glob("*.npy") if p.stem.isdigit()}

    def prune(self, keep: set[int], finished: set[int]) -> None:
        """Delete the files of ``finished`` trials outside ``keep``. A file whose trial is not known to have
        finished yet (its process wrote it and is about to report the trial) stays."""
        for number in self.numbers() & finished - keep:
            (self.directory / f"{number}.npy").unlink(missing_ok=True)


POOL_LIMIT = 12
"""Trials an ensemble may choose from (:func:`ensemble_pool`)."""


def ensemble_pool(trials: Sequence[optuna.trial.FrozenTrial], *, maximize: bool, per_trainer: int = 3,
                  limit: int = POOL_LIMIT) -> list[int]:
    """The trial numbers an ensemble may use, best first: the ``per_trainer`` best completed trials of each
    trainer, ``limit`` in all. Several trainers keep the pool diverse, and a short pool keeps the greedy
    selection from fitting the out-of-fold noise."""
    scored = [t for t in trials if t.value is not None and math.isfinite(float(t.value))]
    scored.sort(key=lambda t: (-float(t.value) if maximize else float(t.value), t.number))  # type: ignore[arg-type]
    taken: dict[str, int] = {}
    out: list[int] = []
    for trial in scored:
        name = str(trial.params.get(TRAINER_PARAM))
        if taken.get(name, 0) < per_trainer and len(out) < limit:
            taken[name] = taken.get(name, 0) + 1
            out.append(trial.number)
    return out


def select_ensemble(metric: str, y: np.ndarray, classes: list[Any] | None, pool: list[tuple[int, np.ndarray]],
                    rounds: int = 25) -> tuple[dict[int, int], float, float]:
    """Greedy ensemble selection with replacement over ``pool`` (``(trial number, out-of-fold predictions)``,
    best first). Returns ``({trial number: times picked}, ensemble score, best single score)``; the weights
    are the counts over their sum. The ensemble grows only while it beats its best smaller version
    strictly, so with no gain it is the best single trial alone."""
    maximize = METRICS[metric][2]
    singles = [prediction_score(metric, y, p, classes) for _, p in pool]
    ranked = [i for i in range(len(pool)) if math.isfinite(singles[i])]
    if not ranked:
        raise ValueError("no candidate has a finite out-of-fold score")
    first = max(ranked, key=lambda i: (singles[i] if maximize else -singles[i], -i))
    counts = {first: 1}
    total = pool[first][1].astype(np.float64)
    best_counts, best = dict(counts), singles[first]
    for size in range(2, rounds + 1):
        trial_scores = [(prediction_score(metric, y, (total + pool[i][1]) / size, classes), i) for i in ranked]
        value, pick = max(trial_scores, key=lambda s: (s[0] if maximize else -s[0], -s[1]))
        counts[pick] = counts.get(pick, 0) + 1
        total += pool[pick][1]
        if value > best + 1e-12 if maximize else value < best - 1e-12:
            best_counts, best = dict(counts), value
    return {pool[i][0]: n for i, n in best_counts.items()}, float(best), float(singles[first])


SIMPLE_TRAINERS = frozenset({"logistic_regression", "linear_regression"})
"""The simplest trainers: preferred on a tie (and their defaults are the first trials)."""
CONFIDENCE = 0.9
"""How often (over bootstrap resamples of the out-of-fold rows) an ensemble must beat the single model."""


def choose_single(trials: Sequence[optuna.trial.FrozenTrial], *, maximize: bool,
                  folds: int | None = None) -> optuna.trial.FrozenTrial:
    """The one-standard-error rule: among the completed trials whose CV mean is within one standard error of
    the best one's, the simplest: a trainer's defaults before a tuned configuration, a linear model before
    the others, then the better CV mean. The best of hundreds of noisy CV means is partly luck; a default
    that ties it statistically tends to do as well on new rows.

    The standard error is Nadeau and Bengio's corrected one (Machine Learning 52, 2003): the fold scores'
    variance times ``1/n + 1/(k - 1)`` for ``n`` scores from ``k``-fold splits (``folds``; default ``n``).
    The plain ``1/n`` treats fold scores as independent, but their training rows overlap, and repeats of
    the split reuse the same rows: it understates the noise several times over."""
    completed = [t for t in trials if t.value is not None and math.isfinite(float(t.value))]
    sign = 1.0 if maximize else -1.0
    best = max(completed, key=lambda t: (sign * float(t.value), -t.number))  # type: ignore[arg-type]
    scores = np.asarray(best.user_attrs.get("fold_scores") or [], dtype=np.float64)
    k = folds or scores.size
    se = float(scores.std(ddof=1) * math.sqrt(1 / scores.size + 1 / (k - 1))) if scores.size > 1 and k > 1 else 0.0
    tied = [t for t in completed if sign * (float(t.value) - float(best.value)) >= -se]  # type: ignore[arg-type]
    return min(tied, key=lambda t: (not t.system_attrs.get("fixed_params"),
                                    str(t.params.get(TRAINER_PARAM)) not in SIMPLE_TRAINERS,
                                    -sign * float(t.value), t.number))  # type: ignore[arg-type]


def confidence(metric: str, y: np.ndarray, classes: list[Any] | None, candidate: np.ndarray, baseline: np.ndarray,
               *, resamples: int = 100, seed: int = 0) -> float:
    """The share of bootstrap resamples of the rows on which ``candidate`` predictions score strictly better
    than ``baseline`` ones: a paired test of an out-of-fold gain (at most 20,000 rows are resampled)."""
    maximize = METRICS[metric][2]
    rng = np.random.default_rng(seed)
    wins = 0
    for _ in range(resamples):
        rows = rng.integers(0, len(y), min(len(y), 20_000))
        a = prediction_score(metric, y[rows], candidate[rows], classes)
        b = prediction_score(metric, y[rows], baseline[rows], classes)
        wins += (a > b) if maximize else (a < b)
    return wins / resamples


def final_model(study: optuna.Study, data: TuningData, candidates: dict[str, type[Trainer]], *, task: TaskKind,
                metric: str, seed: int, schema: list[dict[str, Any]] | None, oof: OofStore | None,
                maximize: bool, threads: int | None = None) -> tuple[Trainer, FitResult, int, dict[str, Any] | None]:
    """The final model fitted on every tuning row, its fit result, the trial it was built from, and the
    ensemble summary (None without stored predictions).

    The single model is :func:`choose_single`'s trial. The ensemble that :func:`select_ensemble` builds from
    :func:`ensemble_pool` replaces it only when its out-of-fold predictions beat that trial's on at least
    :data:`CONFIDENCE` of the bootstrap resamples (:func:`confidence`). ``threads`` caps the native thread
    pools of the final fit."""
    from optuna.trial import TrialState

    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    single = choose_single(completed, maximize=maximize, folds=data.cv.get("folds") if data.folds else None)
    chosen: dict[str, Any] | None = None
    baseline = oof.load(single.number) if oof is not None else None
    if oof is not None and baseline is not None:
        usable = [t for t in completed if _registered(str(t.params[TRAINER_PARAM]), candidates)]
        pool = [(n, p) for n in ensemble_pool(usable, maximize=maximize) if (p := oof.load(n)) is not None]
        if len(pool) > 1:
            counts, score, _ = select_ensemble(metric, data.oof_target(), data.classes, pool)
            trials = {t.number: t for t in usable}
            total = sum(counts.values())
            averaged = sum(c / total * dict(pool)[n].astype(np.float64) for n, c in counts.items())
            sure = confidence(metric, data.oof_target(), data.classes, np.asarray(averaged), baseline, seed=seed)
            members = [{"trial": n, "trainer": str(trials[n].params[TRAINER_PARAM]),
                        "params": unprefixed(str(trials[n].params[TRAINER_PARAM]), trials[n].params),
                        "weight": round(c / total, 6)} for n, c in sorted(counts.items(), key=lambda i: -i[1])]
            used = len(members) > 1 and sure >= CONFIDENCE
            chosen = {"used": used, "members": members if len(members) > 1 else [], "score": score,
                      "single_score": prediction_score(metric, data.oof_target(), baseline, data.classes),
                      "confidence": sure if len(members) > 1 else None, "candidates": len(pool)}
    X_all, y_all = data.all_rows()
    if chosen is not None and chosen["used"]:
        final = get_trainer("ensemble")(task=task, random_state=seed, members=[
            {k: m[k] for k in ("trainer", "params", "weight")} for m in chosen["members"]])
    else:
        name = str(single.params[TRAINER_PARAM])
        cls = candidates[name] if name in candidates else get_trainer(name)  # a resumed study may hold others
        final = cls(task=task, random_state=seed, **unprefixed(name, single.params))
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        fit = final.fit(X_all, y_all, schema=schema)
    return final, fit, single.number, chosen


def _registered(name: str, candidates: dict[str, type[Trainer]]) -> bool:
    """Whether trainer ``name`` can join an ensemble: a registered pipeline trainer (the ensemble finds its
    members by name and joins their ONNX graphs)."""
    from aimaas.training.pipeline import PipelineTrainer

    try:
        cls = get_trainer(name)
    except InvalidInput:
        return False
    return cls is candidates.get(name, cls) and issubclass(cls, PipelineTrainer)
