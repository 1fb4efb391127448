"""JSON-safe summaries of a tuning study: one row per trial, and hyperparameter importances.

Importances use Optuna's PED-ANOVA evaluator, which in Optuna 5 handles conditional (hierarchical) search
spaces: ``overall`` ranks ``trainer`` against every trainer's own hyperparameters, ``by_trainer`` ranks each
trainer's hyperparameters on its own completed trials. With too few completed trials the entry is left out
and ``notes`` says why. optuna is imported on use.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

from aimaas.training.tuning_objective import TRAINER_PARAM, unprefixed

if TYPE_CHECKING:
    import optuna

__all__ = ["MIN_TRIALS_FOR_IMPORTANCE", "importances", "trial_row"]

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
