"""Evaluation plots as PNG bytes, drawn from the JSON-safe evaluation report of a training run.

:func:`render_plots` takes the dict of :mod:`aimaas.training.evaluation` (plus optional ``importance``,
``tuning``, ``epochs`` and ``roc_curve`` entries) and returns a :class:`PlotSet`. A plot is drawn only when the
report holds its data (nothing is estimated or made up: ROC needs curve points, not just the AUC); a plot
whose data is malformed is skipped with a note, never failing the call.

matplotlib is imported on use. Figures are plain ``matplotlib.figure.Figure`` objects saved through the Agg
canvas: pyplot, its global figure manager and the process-wide backend are never touched, so this runs in a
headless worker. Output is deterministic (no software/time metadata in the PNG).
"""

from __future__ import annotations

import io
import logging
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aimaas.errors import InvalidInput

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["DPI", "FIGSIZE", "PLOT_NAMES", "PlotSet", "render_plots"]

log = logging.getLogger(__name__)

FIGSIZE = (5.0, 4.0)
"""Figure size in inches; with :data:`DPI` every PNG is 500 x 400 pixels."""
DPI = 100
MAX_BARS = 20  # bars per bar chart: more become unreadable at 4 inches high
MAX_ANNOTATED_CLASSES = 12  # confusion-matrix cells carry their count up to this many classes
MAX_TICKS = 20  # class tick labels per axis; beyond that every k-th label is shown
LABEL_CHARS = 24  # feature / parameter names are cut to this length
CLASS_CHARS = 10

PLOT_NAMES = (
    "confusion_matrix", "per_class_f1", "calibration", "roc", "residuals", "predicted_vs_actual", "cluster_sizes",
    "feature_importance", "optimization_history", "hyperparameter_importance", "learning_curve",
)
"""Every plot :func:`render_plots` can return, in the order it draws them."""

_lock = threading.Lock()  # matplotlib's font cache and text layout are not safe under concurrent threads
_Drawn = tuple["Figure", str] | None  # (figure, caption), or None when the report has no data for the plot


@dataclass(frozen=True)
class PlotSet:
    """Rendered plots: ``images`` maps a name of :data:`PLOT_NAMES` to PNG bytes (in that order),
    ``captions`` gives each image a one-line description (alt text), ``notes`` says which plots failed and why."""

    images: dict[str, bytes] = field(default_factory=dict)
    captions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def render_plots(report: Mapping[str, Any]) -> PlotSet:
    """Draw every plot that ``report`` supports.

    ``report`` is an ``evaluate_classification`` / ``evaluate_regression`` / ``evaluate_clustering`` dict with
    optional extra keys: ``task`` (used only to label axes), ``importance`` (a ``permutation_importance_table``),
    ``tuning`` (``TuningResult.to_dict()``), ``epochs`` (``[{"epoch", "loss", "valid_score"}]``, ``valid_loss``
    optional) and ``roc_curve`` (``{"fpr": [...], "tpr": [...]}`` for a binary classifier). Absent data means
    an absent plot; malformed data means an absent plot and a note. Raises :class:`InvalidInput` only when
    ``report`` is not a mapping.
    """
    if not isinstance(report, Mapping):
        raise InvalidInput(f"report must be a dict of evaluation results, not {type(report).__name__}.",
                           param="report")
    images: dict[str, bytes] = {}
    captions: dict[str, str] = {}
    notes: list[str] = []
    for name in PLOT_NAMES:
        try:
            with _lock:
                drawn = _DRAW[name](report)
                if drawn is None:
                    continue
                figure, caption = drawn
                images[name] = _png(figure)
            captions[name] = caption
        except Exception as exc:  # one bad entry must not cost the other plots
            log.warning("plot %s skipped: %s: %s", name, type(exc).__name__, exc)
            notes.append(f"{name}: skipped ({type(exc).__name__}: {exc})"[:300])
    return PlotSet(images, captions, notes)


# -- helpers ----------------------------------------------------------------------------------------
def _figure(title: str) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    fig.suptitle(title, fontsize=11)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    # "Software": None drops the only metadata Agg writes, so the same report gives the same bytes
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _short(value: Any, limit: int = LABEL_CHARS) -> str:
    """One line of at most ``limit`` characters, cut in the middle: long names often differ only at the end
    (``class_0017`` / ``class_0018``, ``hist_gradient_boosting.max_depth``)."""
    text = " ".join(str(value).split())
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return text[:head] + "…" + text[len(text) - (limit - 1 - head):]


def _common_prefix(names: list[str]) -> str:
    """The prefix shared by every name, when dropping it leaves each name non-empty and it is worth dropping."""
    if len(names) < 2:
        return ""
    prefix = os.path.commonprefix(names)
    return prefix if len(prefix) >= 4 and all(len(n) > len(prefix) for n in names) else ""


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _hbar(title: str, names: Sequence[Any], values: Sequence[float], xlabel: str,
          errors: Sequence[float] | None = None, xlim: tuple[float, float] | None = None) -> Figure:
    """Horizontal bars, first item on top."""
    fig = _figure(title)
    ax = fig.add_subplot()
    pos = list(range(len(names)))[::-1]
    ax.barh(pos, values, xerr=errors, color="#4c72b0", ecolor="#555555", capsize=2)
    ax.set_yticks(pos, [_short(n) for n in names], fontsize=8 if len(names) > 10 else 9)
    ax.set_xlabel(xlabel)
    if xlim is not None:
        ax.set_xlim(*xlim)
    ax.axvline(0, color="black", linewidth=0.6)
    ax.grid(axis="x", alpha=0.3)
    return fig


# -- classification ---------------------------------------------------------------------------------
def _confusion_matrix(report: Mapping[str, Any]) -> _Drawn:
    import numpy as np

    cm = report.get("confusion_matrix")
    if not cm:
        return None
    labels = list(cm["labels"])
    counts = np.asarray(cm["matrix"], dtype=np.int64)
    n = len(labels)
    if counts.shape != (n, n) or n == 0:
        raise ValueError(f"matrix is {counts.shape}, expected ({n}, {n}) for {n} labels")
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros(counts.shape, dtype=float), where=totals > 0)
    fig = _figure("Confusion matrix (test rows)")
    ax = fig.add_subplot()
    # colour = share of the true class, so a small class's errors show as clearly as a large one's
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of true class")
    step = max(1, -(-n // MAX_TICKS))
    ticks = list(range(0, n, step))
    prefix = _common_prefix([str(v) for v in labels])
    names = [_short(str(labels[i])[len(prefix):], CLASS_CHARS) for i in ticks]
    size = 9 if n <= MAX_ANNOTATED_CLASSES else 7
    ax.set_xticks(ticks, names, rotation=90 if n > 4 else 0, fontsize=size)
    ax.set_yticks(ticks, names, fontsize=size)
    removed = f" (labels without “{_short(prefix, 16)}”)" if prefix else ""
    ax.set_xlabel("predicted" + removed, fontsize=9)
    ax.set_ylabel("true")
    if n <= MAX_ANNOTATED_CLASSES:
        for (i, j), value in np.ndenumerate(counts):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=8,
                    color="white" if share[i, j] > 0.5 else "black")
    shown = "" if step == 1 else f"; every {step}th label shown"
    return fig, f"Confusion matrix of {int(counts.sum())} test rows over {n} classes (rows: true class{shown})."


def _per_class_f1(report: Mapping[str, Any]) -> _Drawn:
    rows = [r for r in report.get("per_class") or [] if _finite(r.get("f1"))]
    if len(rows) < 2:
        return None
    rows.sort(key=lambda r: r["f1"])  # worst first: those are the classes to look at
    shown = rows[:MAX_BARS]
    title = "F1 per class" if len(rows) <= MAX_BARS else f"F1 of the {MAX_BARS} weakest of {len(rows)} classes"
    fig = _hbar(title, [r["label"] for r in shown], [r["f1"] for r in shown], "F1 (test rows)", xlim=(0.0, 1.0))
    return fig, f"{title}, lowest first."


def _calibration(report: Mapping[str, Any]) -> _Drawn:
    calib = report.get("calibration") or {}
    points = [p for p in calib.get("points") or []
              if _finite(p.get("mean_predicted")) and _finite(p.get("fraction_positive"))]
    if not points:
        return None
    fig = _figure("Calibration (reliability)")
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    xs, ys = [p["mean_predicted"] for p in points], [p["fraction_positive"] for p in points]
    ax.plot(xs, ys, color="#4c72b0", marker="o", label="model")
    for x, y, p in zip(xs, ys, points, strict=True):
        ax.annotate(str(p.get("count", "")), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    positive = _short(calib.get("positive_label"), CLASS_CHARS)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel=f"mean predicted P({positive})", ylabel="observed fraction positive")
    ax.legend(fontsize=8, loc="upper left")
    return fig, f"Reliability curve for class {positive} over {len(points)} probability bins (labels: rows per bin)."


def _roc(report: Mapping[str, Any]) -> _Drawn:
    curve = report.get("roc_curve")
    if not curve:
        return None  # the evaluation keeps the AUC only; the curve itself is not re-derived from it
    fpr, tpr = [float(v) for v in curve["fpr"]], [float(v) for v in curve["tpr"]]
    if len(fpr) != len(tpr) or len(fpr) < 2:
        raise ValueError(f"fpr and tpr need the same length >= 2 (got {len(fpr)} and {len(tpr)})")
    fig = _figure("ROC curve")
    ax = fig.add_subplot()
    auc = report.get("roc_auc")
    ax.plot(fpr, tpr, color="#4c72b0", label=f"AUC = {auc:.3f}" if _finite(auc) else "model")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate", ylabel="true positive rate")
    ax.legend(fontsize=8, loc="lower right")
    return fig, "ROC curve on the test rows" + (f" (AUC {auc:.3f})." if _finite(auc) else ".")


# -- regression and clustering ----------------------------------------------------------------------
def _residual_points(report: Mapping[str, Any]) -> list[tuple[float, float]]:
    return [(p["pred"], p["residual"]) for p in report.get("residual_sample") or []
            if _finite(p.get("pred")) and _finite(p.get("residual"))]


def _residuals(report: Mapping[str, Any]) -> _Drawn:
    points = _residual_points(report)
    if not points:
        return None
    fig = _figure("Residuals")
    ax = fig.add_subplot()
    ax.scatter([p for p, _ in points], [r for _, r in points], s=8, alpha=0.6, color="#4c72b0", linewidths=0)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set(xlabel="predicted", ylabel="residual (true − predicted)")
    ax.grid(alpha=0.3)
    return fig, f"Residual against prediction for {len(points)} test rows (of {report.get('rows', '?')})."


def _predicted_vs_actual(report: Mapping[str, Any]) -> _Drawn:
    points = _residual_points(report)
    if not points:
        return None
    pred = [p for p, _ in points]
    true = [p + r for p, r in points]  # residual = true − predicted, so this recovers the true value exactly
    lo, hi = min(pred + true), max(pred + true)
    fig = _figure("Predicted vs actual")
    ax = fig.add_subplot()
    ax.plot([lo, hi], [lo, hi], linestyle="--", color="grey", linewidth=1, label="perfect prediction")
    ax.scatter(true, pred, s=8, alpha=0.6, color="#4c72b0", linewidths=0)
    ax.set(xlabel="actual", ylabel="predicted")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    return fig, f"Predicted against actual value for {len(points)} test rows."


def _cluster_sizes(report: Mapping[str, Any]) -> _Drawn:
    sizes = report.get("cluster_sizes")
    if not sizes:
        return None
    items = sorted(sizes.items(), key=lambda kv: -int(kv[1]))
    shown = items[:MAX_BARS]
    title = "Cluster sizes" if len(items) <= MAX_BARS else f"The {MAX_BARS} largest of {len(items)} clusters"
    fig = _hbar(title, [f"cluster {k}" for k, _ in shown], [int(v) for _, v in shown], "rows")
    return fig, f"{title}, largest first."


# -- explanations and tuning ------------------------------------------------------------------------
def _feature_importance(report: Mapping[str, Any]) -> _Drawn:
    table = report.get("importance") or {}
    rows = [r for r in table.get("features") or [] if _finite(r.get("importance_mean"))]
    if not rows:
        return None
    shown = rows[:MAX_BARS]
    metric = table.get("metric", "score")
    title = "Permutation importance" + ("" if len(rows) <= MAX_BARS else f" (top {MAX_BARS} of {len(rows)})")
    errors = [r["importance_std"] if _finite(r.get("importance_std")) else 0.0 for r in shown]
    fig = _hbar(title, [r["feature"] for r in shown], [r["importance_mean"] for r in shown],
                f"drop in {metric} when shuffled", errors=errors)
    return fig, f"{title}: mean drop in {metric} over {table.get('n_repeats', '?')} shuffles, with its std."


def _optimization_history(report: Mapping[str, Any]) -> _Drawn:
    tuning = report.get("tuning") or {}
    trials = [t for t in tuning.get("trials") or [] if _finite(t.get("score"))]
    complete = [t for t in trials if t.get("state") == "complete"]
    if not complete:
        return None
    maximize = tuning.get("direction", "maximize") == "maximize"
    fig = _figure("Optimization history")
    ax = fig.add_subplot()
    trainers = sorted({str(t.get("trainer")) for t in complete})
    colours = dict(zip(trainers, [f"C{i % 10}" for i in range(len(trainers))], strict=True))
    for name in trainers:
        mine = [t for t in complete if str(t.get("trainer")) == name]
        ax.scatter([t["number"] for t in mine], [t["score"] for t in mine], s=14, color=colours[name],
                   label=_short(name, 18))
    pruned = [t for t in trials if t.get("state") == "pruned"]
    if pruned:  # a pruned trial's score is its running mean when stopped: shown apart, not in the best line
        ax.scatter([t["number"] for t in pruned], [t["score"] for t in pruned], s=14, marker="x", color="grey",
                   label="pruned")
    best: list[float] = []
    for t in sorted(complete, key=lambda t: t["number"]):
        best.append(t["score"] if not best else (max if maximize else min)(best[-1], t["score"]))
    ax.step(sorted(t["number"] for t in complete), best, where="post", color="black", linewidth=1.2,
            label="best so far")
    ax.set(xlabel="trial", ylabel=f"{tuning.get('metric', 'score')} (CV)")
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    return fig, f"Score of {len(complete)} completed trials and the best so far ({tuning.get('metric', 'score')})."


def _hyperparameter_importance(report: Mapping[str, Any]) -> _Drawn:
    tuning = report.get("tuning") or {}
    found = tuning.get("importances") or {}
    shares, scope = found.get("overall") or {}, "all trials"
    best = tuning.get("best_trainer")
    if not shares and best:
        shares, scope = (found.get("by_trainer") or {}).get(best) or {}, f"{best} trials"
    items = sorted(((k, float(v)) for k, v in shares.items() if _finite(v)), key=lambda kv: -kv[1])[:MAX_BARS]
    if not items:
        return None
    # overall keys are "<trainer>.<param>": put the parameter first so that cutting a long name keeps it
    names = [f"{k.split('.', 1)[1]} ({k.split('.', 1)[0]})" if "." in k else k for k, _ in items]
    fig = _hbar("Hyperparameter importance", names, [v for _, v in items],
                f"share of importance ({found.get('evaluator', 'optuna')})", xlim=(0.0, 1.0))
    return fig, f"Hyperparameter importance over {scope} (shares sum to 1)."


def _learning_curve(report: Mapping[str, Any]) -> _Drawn:
    epochs = [e for e in report.get("epochs") or [] if _finite(e.get("epoch"))]
    series = {key: [(e["epoch"], e[key]) for e in epochs if _finite(e.get(key))]
              for key in ("loss", "valid_loss", "valid_score")}
    if not any(series.values()):
        return None
    fig = _figure("Learning curve")
    ax = fig.add_subplot()
    ax.set_xlabel("epoch")
    handles = []
    for key, colour in (("loss", "C0"), ("valid_loss", "C2")):
        if series[key]:
            handles += ax.plot(*zip(*series[key], strict=True), color=colour, marker=".", label=key.replace("_", " "))
    ax.set_ylabel("loss")
    if series["valid_score"]:  # scores and losses have different scales: a second axis
        right = ax.twinx() if handles else ax
        handles += right.plot(*zip(*series["valid_score"], strict=True), color="C1", marker=".",
                              label="validation score")
        right.set_ylabel("validation score")
    ax.legend(handles=handles, fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return fig, f"Training loss and validation score over {len(epochs)} epochs."


_DRAW: dict[str, Callable[[Mapping[str, Any]], _Drawn]] = {
    "confusion_matrix": _confusion_matrix, "per_class_f1": _per_class_f1, "calibration": _calibration,
    "roc": _roc, "residuals": _residuals, "predicted_vs_actual": _predicted_vs_actual,
    "cluster_sizes": _cluster_sizes, "feature_importance": _feature_importance,
    "optimization_history": _optimization_history, "hyperparameter_importance": _hyperparameter_importance,
    "learning_curve": _learning_curve,
}
