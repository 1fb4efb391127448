"""The model card: a Markdown page generated from the facts a training run gathered.

:func:`render_model_card` is a pure function (no I/O, no clock): the same facts give the same text. Its
"Limitations" section is derived from the facts (test-set size through a Wilson interval, class balance,
dropped columns, ONNX parity, training size, search bias) rather than written once for every model; it is
computed in :mod:`aimaas.training.model_card_limits` (with the inline Markdown helpers the card shares), and
:func:`limitations` and :func:`wilson_interval` are re-exported here.
:func:`library_versions` reads installed versions from package metadata without importing the packages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from aimaas.training.model_card_limits import (
    _accuracy_counts,
    _code,
    _fmt,
    _names,
    _text,
    limitations,
    wilson_interval,
)

__all__ = ["LIBRARIES", "library_versions", "limitations", "render_model_card", "wilson_interval"]

LIBRARIES = ("aimaas", "numpy", "pandas", "scikit-learn", "lightgbm", "skl2onnx", "onnx", "onnxruntime", "optuna",
             "torch")
"""Distributions whose versions :func:`library_versions` reports (with ``python``) when installed."""
MAX_CLASS_ROWS = 20  # per-class table rows; larger class sets show their weakest classes
MAX_IMPORTANCE = 10

_MAIN_METRICS = {
    "classification": ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted", "precision_macro",
                       "recall_macro", "roc_auc", "log_loss"),
    "regression": ("r2", "mae", "rmse"),
    "clustering": ("silhouette", "n_clusters"),
}
_METRIC_NAMES = {"r2": "R²", "mae": "MAE", "rmse": "RMSE", "roc_auc": "ROC AUC", "f1_macro": "F1 (macro)",
                 "f1_weighted": "F1 (weighted)", "precision_macro": "precision (macro)",
                 "recall_macro": "recall (macro)", "balanced_accuracy": "balanced accuracy", "log_loss": "log loss",
                 "n_clusters": "clusters"}
_STOPS = {"n_trials": "its trial budget", "timeout": "its time budget", "cancelled": "a cancellation"}


def library_versions() -> dict[str, str]:
    """``{"python": "3.11.9", "numpy": "2.1.0", ...}`` for :data:`LIBRARIES` that are installed, read from
    package metadata (nothing is imported, torch included)."""
    import importlib.metadata as md
    import platform

    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out


# -- Markdown helpers ---------------------------------------------------------------------------------
def _cell(value: str) -> str:
    """A table cell: pipes escaped (GFM reads ``\\|`` as a pipe even inside code), newlines joined."""
    return " ".join(value.replace("|", "\\|").split()) or " "


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A GFM table; cells are already formatted (text/code/fmt) and get their pipes escaped here."""
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip() or value.isoformat()
    return str(value)


# -- sections -----------------------------------------------------------------------------------------
def render_model_card(facts: Mapping[str, Any]) -> str:
    """The model card of one model version, as Markdown.

    Every key of ``facts`` is optional; sections without facts are left out. Keys: ``name``, ``version``,
    ``description``, ``task``, ``modality``, ``trainer``, ``params``; ``fit`` (``FitResult.to_dict()``:
    features, dropped columns, training rows, notes; it fills ``trainer``/``params`` when they are absent);
    ``dataset`` (``name, version, rows, sha256, target, split: {id, seed, train, valid, test}``); ``tuning``
    (``TuningResult.to_dict()``) and ``budget`` (``{n_trials, timeout_s}``) for an AutoML run; ``metrics``
    (the test evaluation dict); ``importance`` (``permutation_importance_table``); ``parity`` (from
    ``onnx_check.parity``); ``signature`` (``{input_kind, inputs, outputs, classes}``; inputs and outputs are
    lists of ``{name, role, type, dtype, shape}``, any subset); ``notes`` (run remarks, listed under Method);
    ``library_versions``, ``code_version``, ``created_at``, ``seed``; ``plots`` (plot names, or name →
    caption) linked as ``plot_link`` (default ``"plots/{name}.png"``) formats them. Strings from users are
    escaped; the limitations are computed from the facts (see :func:`limitations`). Never raises on missing
    keys; values of the wrong type are a programming error.
    """
    fit = facts.get("fit") or {}
    tuning = facts.get("tuning") or {}
    task = str(facts.get("task") or fit.get("task") or tuning.get("task") or "")
    out = _header(facts, fit, tuning, task)
    for section in (_model(facts, fit), _data(facts, fit), _method(facts, fit, tuning), _metrics(facts, task),
                    _export(facts), _plots(facts)):
        if section:
            out += ["", *section]
    out += ["", "## Limitations", "", *[f"- {item}" for item in limitations(facts, task)]]
    repro = _reproducibility(facts, tuning)
    if repro:
        out += ["", *repro]
    return "\n".join(out) + "\n"


def _header(facts: Mapping[str, Any], fit: Mapping[str, Any], tuning: Mapping[str, Any], task: str) -> list[str]:
    name = _text(facts.get("name") or "unnamed model")
    version = facts.get("version")
    out = [f"# Model card: {name}" + (f" v{version}" if version is not None else "")]
    if facts.get("description"):
        out += ["", _text(facts["description"])]
    trainer = facts.get("trainer") or fit.get("trainer")
    dataset = facts.get("dataset") or {}
    summary = f"A {task or 'machine-learning'} model"
    summary += f" on {_text(facts['modality'])} data" if facts.get("modality") else ""
    summary += f", trained with {_code(trainer)}" if trainer else ""
    summary += " (chosen by an AutoML search)" if tuning else ""
    summary += f" on dataset {_code(dataset['name'])}" if dataset.get("name") else ""
    metrics = facts.get("metrics") or {}
    key = tuning.get("metric") if tuning.get("metric") in metrics else _headline(task)
    if key and metrics.get(key) is not None:
        summary += f". Test {_METRIC_NAMES.get(key, key)}: **{_fmt(metrics[key])}**"
    return [*out, "", summary + "."]


def _headline(task: str) -> str | None:
    return {"classification": "accuracy", "regression": "r2", "clustering": "silhouette"}.get(task)


def _model(facts: Mapping[str, Any], fit: Mapping[str, Any]) -> list[str]:
    rows = [[label, value] for label, value in (
        ("Name", _text(facts.get("name") or "")), ("Version", _fmt(facts.get("version"))),
        ("Task", _text(facts.get("task") or fit.get("task") or "")), ("Modality", _text(facts.get("modality") or "")),
        ("Trainer", _code(facts.get("trainer") or fit.get("trainer") or "?")),
        ("Created", _text(_when(facts["created_at"])) if facts.get("created_at") else ""),
    ) if value and value != "—"]
    out = ["## Model", "", *_table(["", ""], rows)]
    params = facts.get("params") or fit.get("params") or {}
    if params:
        out += ["", "Hyperparameters:", "",
                *_table(["parameter", "value"], [[_code(k), _code(f"{v:.6g}" if isinstance(v, float) else v)]
                                              for k, v in sorted(params.items())])]
    return out


def _data(facts: Mapping[str, Any], fit: Mapping[str, Any]) -> list[str]:
    dataset = facts.get("dataset") or {}
    split = dataset.get("split") or {}
    rows = [[label, value] for label, value in (
        ("Dataset", _code(dataset["name"]) if dataset.get("name") else ""),
        ("Dataset version", _fmt(dataset.get("version")) if dataset.get("version") is not None else ""),
        ("Rows", _fmt(dataset.get("rows")) if dataset.get("rows") is not None else ""),
        ("SHA-256", _code(str(dataset["sha256"])[:16]) if dataset.get("sha256") else ""),
        ("Target column", _code(dataset["target"]) if dataset.get("target") else ""),
        ("Split", " · ".join(f"{k} {_code(split[k]) if k in ('id', 'seed') else _fmt(split[k])}"
                             for k in ("id", "seed", "train", "valid", "test") if split.get(k) is not None)),
        ("Training rows", _fmt(fit.get("n_rows")) if fit.get("n_rows") is not None else ""),
    ) if value]
    features = list(fit.get("features") or [])
    dropped = list(fit.get("dropped") or [])
    if not rows and not features and not dropped:
        return []
    out = ["## Data", ""]
    if rows:
        out += _table(["", ""], rows)
    if features:
        out += ["", f"Features used ({len(features)}): {_names(features)}."]
    if dropped:
        out += ["", f"Columns not used ({len(dropped)}):", "",
                *_table(["column", "type", "reason"],
                       [[_code(d.get("name") or d.get("column") or "?"), _text(d.get("type") or ""),
                         _text(d.get("reason") or "")] for d in dropped])]
    return out


def _method(facts: Mapping[str, Any], fit: Mapping[str, Any], tuning: Mapping[str, Any]) -> list[str]:
    out = ["## Method", ""]
    if tuning:
        trials = tuning.get("trials") or []
        counts = tuning.get("counts") or {}
        searched = sorted({str(t.get("trainer")) for t in trials if t.get("trainer")})
        budget = facts.get("budget") or {}
        limits = [f"{_fmt(budget[k])}{unit}" for k, unit in (("n_trials", " trials"), ("timeout_s", " s"))
                  if budget.get(k)]
        state = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        cv = tuning.get("cv") or {}
        scheme = {"stratified_kfold": f"{cv.get('folds')}-fold stratified cross-validation",
                  "kfold": f"{cv.get('folds')}-fold cross-validation",
                  "holdout": f"a validation split of {_fmt(cv.get('valid_rows'))} rows"}.get(str(cv.get("kind")), "?")
        metric = tuning.get("metric", "score")
        out.append(
            f"AutoML search over {_names(searched) or 'the task trainers'}: {len(trials)} trials"
            + (f" ({state})" if state else "") + (f", budget {' / '.join(limits)}" if limits else "")
            + f", stopped by {_STOPS.get(str(tuning.get('stop_reason')), 'an unknown reason')}. Each trial was "
            + f"scored by {scheme}" + (f" on {_fmt(cv['rows'])} rows" if cv.get("rows") else "")
            + f" with {_code(metric)}" + (f" ({_text(cv['note'])})" if cv.get("note") else "") + ". "
            + f"Best: trial {_fmt(tuning.get('best_trial'))}, {_code(tuning.get('best_trainer'))}, "
            + f"CV {_code(metric)} = **{_fmt(tuning.get('best_score'))}**; it was refitted on all tuning rows "
            + f"(search {_fmt(tuning.get('search_seconds'))} s, refit {_fmt(tuning.get('refit_seconds'))} s).")
        shares = (tuning.get("importances") or {}).get("overall") or {}
        if shares:
            top = sorted(shares.items(), key=lambda kv: -float(kv[1]))[:5]
            out += ["", "Most influential search choices: " + ", ".join(f"{_code(k)} {v:.0%}" for k, v in top) + "."]
    elif fit.get("trainer") or facts.get("trainer"):
        with_params = ", with the hyperparameters above" if facts.get("params") or fit.get("params") else ""
        out.append(f"A single trainer, {_code(facts.get('trainer') or fit.get('trainer'))}{with_params}"
                   + (f", fitted on {_fmt(fit['n_rows'])} rows" if fit.get("n_rows") is not None else "")
                   + (f" in {_fmt(fit['fit_seconds'])} s" if fit.get("fit_seconds") is not None else "") + ".")
    else:
        return []
    notes = [*(fit.get("notes") or []), *(facts.get("notes") or [])]
    if notes:
        out += ["", "Notes from the run:", "", *[f"- {_text(n)}" for n in notes]]
    return out


def _metrics(facts: Mapping[str, Any], task: str) -> list[str]:
    metrics = facts.get("metrics") or {}
    if not metrics:
        return []
    rows = []
    for key in _MAIN_METRICS.get(task, ()):
        if metrics.get(key) is None:
            continue
        value = _fmt(metrics[key])
        if key == "accuracy" and metrics.get("rows"):
            ci = _accuracy_ci(metrics)
            value += f" (95 % CI {_fmt(ci[0])}–{_fmt(ci[1])}, Wilson)" if ci else ""
        rows.append([_METRIC_NAMES.get(key, key), value])
    title = f"## Test metrics ({_fmt(metrics['rows'])} held-out rows)" if metrics.get("rows") else "## Test metrics"
    out = [title, "", *_table(["metric", "value"], rows)] if rows else [title]
    out += _per_class(metrics) + _regression_extra(metrics) + _clusters(metrics) + _importance(facts)
    return out


def _accuracy_ci(metrics: Mapping[str, Any]) -> tuple[float, float] | None:
    counts = _accuracy_counts(metrics)
    return wilson_interval(*counts) if counts else None


def _per_class(metrics: Mapping[str, Any]) -> list[str]:
    rows = list(metrics.get("per_class") or [])
    if not rows:
        return []
    note = ""
    if len(rows) > MAX_CLASS_ROWS:  # the weakest classes are the ones a reader needs to see
        rows = sorted(rows, key=lambda r: (r.get("f1") is None, r.get("f1") or 0.0))[:MAX_CLASS_ROWS]
        note = f" (the {MAX_CLASS_ROWS} lowest F1 of {len(metrics['per_class'])} classes)"
    return ["", f"Per class{note}:", "",
            *_table(["class", "precision", "recall", "F1", "support"],
                   [[_code(r.get("label")), _fmt(r.get("precision")), _fmt(r.get("recall")), _fmt(r.get("f1")),
                     _fmt(r.get("support"))] for r in rows])]


def _regression_extra(metrics: Mapping[str, Any]) -> list[str]:
    q = (metrics.get("residuals") or {}).get("quantiles") or {}
    if q.get("p05") is None or q.get("p95") is None:
        return []
    return ["", f"Residuals (true − predicted): median {_fmt(q.get('p50'))}; 90 % of test rows between "
                f"{_fmt(q['p05'])} and {_fmt(q['p95'])}."]


def _clusters(metrics: Mapping[str, Any]) -> list[str]:
    sizes = metrics.get("cluster_sizes") or {}
    if not sizes:
        return []
    top = sorted(sizes.items(), key=lambda kv: -int(kv[1]))[:MAX_CLASS_ROWS]
    return ["", "Cluster sizes:", "", *_table(["cluster", "rows"], [[_code(k), _fmt(int(v))] for k, v in top])]


def _importance(facts: Mapping[str, Any]) -> list[str]:
    imp = facts.get("importance") or {}
    rows = list(imp.get("features") or [])[:MAX_IMPORTANCE]
    if not rows:
        return []
    metric = imp.get("metric", "score")
    return ["", f"Permutation importance (drop in {_code(metric)} when a column is shuffled, "
                f"{_fmt(imp.get('n_repeats'))} repeats):", "",
            *_table(["feature", "mean drop", "std"],
                   [[_code(r.get("feature")), _fmt(r.get("importance_mean")), _fmt(r.get("importance_std"))]
                    for r in rows])]


def _export(facts: Mapping[str, Any]) -> list[str]:
    parity = facts.get("parity") or {}
    signature = facts.get("signature") or {}
    if not parity and not signature:
        return []
    out = ["## ONNX export"]
    if parity:
        parts = [f"{label} {_fmt(parity[key])}" for key, label in (
            ("label_agreement", "label agreement"), ("max_abs_diff_proba", "max |Δ probability|"),
            ("max_abs_diff", "max |Δ prediction|"), ("max_rel_diff", "max relative Δ"),
            ("max_abs_diff_distance", "max |Δ distance|")) if parity.get(key) is not None]
        out += ["", f"Parity with the trained model on {_fmt(parity.get('rows'))} test rows: " + "; ".join(parts) + "."]
    if signature.get("input_kind"):
        out += ["", f"Input kind: {_code(signature['input_kind'])}."]
    for kind in ("inputs", "outputs"):
        specs = signature.get(kind) or []
        specs = [{"name": k, **v} if isinstance(v, Mapping) else {"name": k, "type": v} for k, v in specs.items()] \
            if isinstance(specs, Mapping) else [s if isinstance(s, Mapping) else {"name": s} for s in specs]
        keys = [k for k in ("name", "role", "type", "dtype", "shape") if any(k in s for s in specs)]
        if specs:
            rows = [[_text(s[k]) if k in ("type", "dtype") else _code(s[k]) if k in s else "" for k in keys]
                    for s in specs]
            out += ["", f"{kind.capitalize()} ({len(rows)}):", "", *_table(keys, rows)]
    if signature.get("classes"):
        out += ["", f"Classes ({len(signature['classes'])}): {_names(signature['classes'])}."]
    return out


def _plots(facts: Mapping[str, Any]) -> list[str]:
    plots = facts.get("plots") or {}
    if not plots:
        return []
    items = plots.items() if isinstance(plots, Mapping) else [(p, "") for p in plots]
    link = str(facts.get("plot_link") or "plots/{name}.png")
    return ["## Plots", "", *[f"- [{_text(name)}]({link.format(name=name)})" + (f": {_text(c)}" if c else "")
                              for name, c in items]]


def _reproducibility(facts: Mapping[str, Any], tuning: Mapping[str, Any]) -> list[str]:
    versions = facts.get("library_versions") or {}
    rows = [[_text(k), _code(v)] for k, v in versions.items()]
    lead = [f"{label} {_code(facts[key])}" for key, label in (("code_version", "Code version"), ("seed", "seed"))
            if facts.get(key) is not None]
    if tuning.get("study_name"):
        lead.append(f"Optuna study {_code(tuning['study_name'])} (seed {_fmt(tuning.get('seed'))})")
    if not rows and not lead:
        return []
    out = ["## Reproducibility"]
    if lead:
        out += ["", "; ".join(lead) + "."]
    if rows:
        out += ["", *_table(["library", "version"], rows)]
    return out
