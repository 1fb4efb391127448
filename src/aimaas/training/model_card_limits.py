"""The "Limitations" section of the model card, derived from the facts a training run gathered.

:func:`limitations` states each caveat only when the facts show it: test-set size through a Wilson interval
(:func:`wilson_interval`), class balance, dropped columns, ONNX parity, training size, search bias, weak fits.
Like :func:`aimaas.training.model_card.render_model_card`, which renders these bullets and re-exports both
functions, it is pure (no I/O, no clock).

It also owns the inline Markdown helpers the whole card shares (``_fmt``, ``_text``, ``_code``, ``_names``):
:mod:`aimaas.training.model_card` imports them from here, so this module imports nothing from it (no cycle).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["limitations", "wilson_interval"]

MAX_LIST = 30  # features listed by name before "and N more"
WIDE_CI = 0.10  # a 95 % interval wider than 10 points of accuracy is called out
IMBALANCE = 0.2  # smallest / largest class support below this is called imbalanced
FEW_ROWS = 10  # per-class figures on fewer test rows are flagged
SMALL_TRAIN = 1_000
SMALL_TEST = 100
PARITY_TOL = 1e-4
_Z95 = 1.959963984540054
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#~])")  # pipes are escaped by model_card._cell, in tables only


# -- Markdown helpers (shared with model_card) ------------------------------------------------------------
def _fmt(value: Any) -> str:
    """A metric value as the card prints it: ints as is, floats to 4 decimals below 10 and 2 above (with
    thousands separators), tiny ones in scientific notation; None as an em dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.4f}" if abs(value) < 10 else f"{value:,.2f}"


def _text(value: Any) -> str:
    """Free text on one line with Markdown's special characters escaped (names come from users); a pipe only
    matters in a table, where :func:`aimaas.training.model_card._cell` escapes it."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def _code(value: Any) -> str:
    """An identifier as inline code on one line (a backtick inside becomes a quote: code spans can't escape)."""
    return "`" + " ".join(str(value).replace("`", "'").split()) + "`"


def _names(values: Sequence[Any], limit: int = MAX_LIST) -> str:
    shown = ", ".join(_code(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


# -- limitations ----------------------------------------------------------------------------------------
def wilson_interval(successes: int, n: int, z: float = _Z95) -> tuple[float, float]:
    """The Wilson score interval for a proportion of ``successes`` out of ``n`` (95 % by default); (0, 1) when
    ``n`` is 0. Unlike the normal approximation it stays inside [0, 1] and is sound for small ``n``."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _accuracy_counts(metrics: Mapping[str, Any]) -> tuple[int, int] | None:
    """(correct, rows): exact from the confusion matrix's diagonal, else rounded from accuracy x rows."""
    matrix = (metrics.get("confusion_matrix") or {}).get("matrix")
    if matrix:
        return sum(row[i] for i, row in enumerate(matrix)), sum(sum(row) for row in matrix)
    if metrics.get("accuracy") is not None and metrics.get("rows"):
        return round(metrics["accuracy"] * metrics["rows"]), int(metrics["rows"])
    return None


def limitations(facts: Mapping[str, Any], task: str) -> list[str]:
    """The card's "Limitations" bullets, each stated only when the facts show it (Markdown, escaped)."""
    metrics = facts.get("metrics") or {}
    fit = facts.get("fit") or {}
    out = _test_size(metrics, task) + _classes(metrics) + _dropped(fit) + _parity(facts.get("parity"), task)
    n_train = fit.get("n_rows")
    if isinstance(n_train, int) and n_train < SMALL_TRAIN:
        out.append(f"Trained on {_fmt(n_train)} rows only: patterns that are rare in the data were seen a handful "
                   "of times at most, and more data is likely to improve and stabilise the model.")
    out += _search(facts.get("tuning") or {}, metrics)
    if task == "regression" and metrics.get("r2") is not None and metrics["r2"] < 0:
        out.append(f"Test R² is {_fmt(metrics['r2'])}: the model predicts worse than the mean of the test target.")
    if task == "clustering" and metrics.get("silhouette") is not None and metrics["silhouette"] < 0.25:
        out.append(f"Silhouette {_fmt(metrics['silhouette'])}: the clusters overlap; treat them as a coarse "
                   "partition rather than natural groups.")
    dataset = facts.get("dataset") or {}
    source = f"dataset {_code(dataset['name'])}" if dataset.get("name") else "the training dataset"
    out.append(f"Evaluated only on held-out rows of {source}, drawn from the same source as the training rows: "
               "nothing is known of its behaviour on other populations, places, periods or collection "
               "processes. Monitor it on the data it serves and validate it again before using it elsewhere.")
    return out


def _test_size(metrics: Mapping[str, Any], task: str) -> list[str]:
    if not metrics:
        return ["No test metrics were recorded: the model's quality on unseen rows is unknown."]
    counts = _accuracy_counts(metrics) if task == "classification" else None
    if counts and counts[1]:
        lo, hi = wilson_interval(*counts)
        if hi - lo > WIDE_CI:
            return [f"Small test set: accuracy {_fmt(counts[0] / counts[1])} rests on {_fmt(counts[1])} rows, "
                    f"so its 95 % Wilson interval is {_fmt(lo)}–{_fmt(hi)}. Differences between models smaller "
                    "than this range are not evidence that one is better."]
    elif task != "classification" and isinstance(metrics.get("rows"), int) and metrics["rows"] < SMALL_TEST:
        return [f"Small test set: the metrics rest on {_fmt(metrics['rows'])} rows and can shift noticeably on "
                "new data."]
    return []


def _classes(metrics: Mapping[str, Any]) -> list[str]:
    rows = [r for r in metrics.get("per_class") or [] if isinstance(r.get("support"), int)]
    present = [r for r in rows if r["support"] > 0]
    if len(present) < 2:
        return []
    out = []
    total = sum(r["support"] for r in present)
    small, large = min(present, key=lambda r: r["support"]), max(present, key=lambda r: r["support"])
    accuracy = metrics.get("accuracy")
    if accuracy is not None and accuracy <= large["support"] / total + 1e-9:
        out.append(f"Accuracy {_fmt(accuracy)} is no better than always predicting the most frequent class "
                   f"{_code(large['label'])} ({large['support'] / total:.1%} of the test rows).")
    if small["support"] / large["support"] < IMBALANCE:
        weakest = min(present, key=lambda r: r.get("recall") or 0.0)
        out.append(f"Class imbalance: {_code(small['label'])} has {small['support']} test rows "
                   f"({small['support'] / total:.1%}) against {large['support']} for {_code(large['label'])}. "
                   f"Accuracy favours the large classes; balanced accuracy is "
                   f"{_fmt(metrics.get('balanced_accuracy'))} and the lowest recall {_fmt(weakest.get('recall'))} "
                   f"(class {_code(weakest['label'])}).")
    absent = [r["label"] for r in rows if r["support"] == 0]
    if absent:
        out.append(f"No test rows for class {_names(absent, 10)}: the figures shown for it measure nothing.")
    few = [r["label"] for r in present if r["support"] < FEW_ROWS]
    if few:
        out.append(f"Per-class figures for {_names(few, 10)} rest on fewer than {FEW_ROWS} test rows each.")
    return out


def _dropped(fit: Mapping[str, Any]) -> list[str]:
    dropped = fit.get("dropped") or []
    if not dropped:
        return []
    what = "; ".join(f"{_code(d.get('name') or d.get('column') or '?')} ({_text(d.get('reason') or 'no reason')})"
                     for d in dropped[:10])
    more = f" and {len(dropped) - 10} more" if len(dropped) > 10 else ""
    return [f"The model ignores {len(dropped)} column(s): {what}{more}. Whatever they hold plays no part in its "
            "predictions; convert a column to a supported type if it matters."]


def _parity(parity: Mapping[str, Any] | None, task: str) -> list[str]:
    if not parity:
        return []
    agreement = parity.get("label_agreement")
    diffs = {k: v for k, v in parity.items() if k.startswith("max_") and isinstance(v, int | float)}
    key = "max_rel_diff" if task == "regression" and "max_rel_diff" in diffs else None
    worst = diffs.get(key) if key else max(diffs.values(), default=0.0)
    if (agreement is None or agreement >= 1.0) and (worst or 0.0) <= PARITY_TOL:
        return []
    parts = [f"label agreement {agreement:.2%}"] if agreement is not None and agreement < 1.0 else []
    parts += [f"{k.replace('_', ' ')} {_fmt(v)}" for k, v in diffs.items() if v > PARITY_TOL]
    return [f"The served ONNX model does not exactly reproduce the trained one on the test rows ({', '.join(parts)}): "
            "predictions near a decision boundary may differ from the figures above."]


def _search(tuning: Mapping[str, Any], metrics: Mapping[str, Any]) -> list[str]:
    if not tuning:
        return []
    out = []
    n = len(tuning.get("trials") or [])
    metric, best = tuning.get("metric"), tuning.get("best_score")
    test = metrics.get(metric) if metric else None
    if n >= 10 and best is not None and test is not None:
        out.append(f"The CV {_code(metric)} of {_fmt(best)} is the best of {n} trials and so biased upward by the "
                   f"selection; the single test measurement ({_fmt(test)}) is the estimate to rely on.")
    if tuning.get("stop_reason") in ("timeout", "cancelled"):
        out.append(f"The search was stopped ({_text(tuning['stop_reason'])}) after {n} trials: a longer search may "
                   "find a better configuration.")
    failed = (tuning.get("counts") or {}).get("fail", 0)
    if failed:
        out.append(f"{failed} of {n} trials failed; the configurations they tried were not evaluated.")
    return out
