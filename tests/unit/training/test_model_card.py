"""The model card: real facts from small fitted models appear formatted, the Wilson interval matches a hand
computation, user strings are escaped, and each limitation appears exactly when its condition holds."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from aimaas.training import (
    evaluate_classification,
    evaluate_clustering,
    evaluate_regression,
    get_trainer,
    parity,
    permutation_importance_table,
)
from aimaas.training.model_card import library_versions, limitations, render_model_card, wilson_interval
from aimaas.training.tuning import tune

from .conftest import Split

SHA = "0123456789abcdef" * 4


def fit(name: str, task: str, data: Split, **params: Any) -> tuple[Any, dict[str, Any]]:
    trainer = get_trainer(name)(task=task, random_state=0, **params)
    return trainer, trainer.fit(data.X_train, data.y_train, schema=data.schema).to_dict()


@pytest.fixture(scope="module")
def iris_facts(iris: Split) -> dict[str, Any]:
    trainer, fitted = fit("logistic_regression", "classification", iris)
    X, y = iris.X_test, iris.y_test
    metrics = evaluate_classification(y.to_numpy(), trainer.predict(X), trainer.predict_proba(X), trainer.classes)
    return {
        "name": "iris-species", "version": 2, "task": "classification", "modality": "tabular", "fit": fitted,
        "dataset": {"name": "iris", "version": 1, "rows": 150, "sha256": SHA, "target": "species",
                    "split": {"id": "split-7", "seed": 0, "train": len(iris.X_train), "test": len(X)}},
        "metrics": metrics, "importance": permutation_importance_table(trainer, X, y, n_repeats=2),
        "parity": parity(trainer, trainer.export_onnx(X.head()), X),
        "signature": {"inputs": [{"name": c, "type": "float32", "shape": [None, 1]} for c in fitted["features"]],
                      "outputs": [{"name": "label", "type": "int64", "shape": [None]}]},
        "library_versions": {"python": "3.11.7", "scikit-learn": "1.9.1"}, "code_version": "f388369",
        "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "seed": 0,
        "plots": {"confusion_matrix": "Confusion matrix of 38 test rows", "per_class_f1": "F1 per class"},
    }


def bullets(card: str) -> list[str]:
    section = card.split("## Limitations\n\n", 1)[1].split("\n\n", 1)[0]
    return [line[2:] for line in section.splitlines()]


def columns(line: str) -> int:
    """Cells in a Markdown table row, splitting on pipes that are not backslash-escaped."""
    return len(re.split(r"(?<!\\)\|", line.strip().strip("|").replace("\\\\", "")))


def classification_facts(truth: list[Any], pred: list[Any], **extra: Any) -> dict[str, Any]:
    labels = sorted(set(truth) | set(pred))
    metrics = evaluate_classification(np.array(truth), np.array(pred), None, labels)
    return {"task": "classification", "metrics": metrics, **extra}


def test_card_holds_the_real_numbers(iris_facts: dict[str, Any]) -> None:
    card = render_model_card(iris_facts)
    metrics, fitted = iris_facts["metrics"], iris_facts["fit"]
    assert card.startswith("# Model card: iris-species v2\n")
    assert f"Test accuracy: **{metrics['accuracy']:.4f}**" in card
    for key, label in (("balanced_accuracy", "balanced accuracy"), ("f1_macro", "F1 (macro)"),
                       ("roc_auc", "ROC AUC"), ("log_loss", "log loss")):
        assert f"| {label} | {metrics[key]:.4f} |" in card
    for row in metrics["per_class"]:
        assert (f"| `{row['label']}` | {row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} | "
                f"{row['support']} |") in card
    top = iris_facts["importance"]["features"][0]
    assert f"| `{top['feature']}` | {top['importance_mean']:.4f} |" in card or f"`{top['feature']}`" in card
    assert f"| Training rows | {fitted['n_rows']} |" in card and f"| SHA-256 | `{SHA[:16]}` |" in card
    assert SHA not in card  # a prefix identifies the data; the card does not need all 64 digits
    assert "id `split-7` · seed `0` · train 112 · test 38" in card
    assert f"label agreement {iris_facts['parity']['label_agreement']:.4f}" in card
    assert "| `petal width (cm)` | float32 | `[None, 1]` |" in card
    assert "| scikit-learn | `1.9.1` |" in card and "Code version `f388369`" in card
    assert "- [confusion\\_matrix](plots/confusion_matrix.png): Confusion matrix of 38 test rows" in card
    assert "| Created | 2026-01-02 03:04:05 UTC |" in card
    assert f"A single trainer, `logistic_regression`, with the hyperparameters above, fitted on {fitted['n_rows']}" in (
        card)
    assert f"| `C` | `{fitted['params']['C']:.6g}` |" in card


def test_wilson_interval_matches_a_hand_computation() -> None:
    # 45 of 50: p = 0.9, z² = 3.841459, d = 1 + z²/n = 1.0768292; centre = (0.9 + z²/2n) / d = 0.871463;
    # half = z/d · sqrt(p(1-p)/n + z²/4n²) = 1.820130 · 0.0467349 = 0.085063
    lo, hi = wilson_interval(45, 50)
    assert lo == pytest.approx(0.78640, abs=1e-5) and hi == pytest.approx(0.95652, abs=1e-5)
    # no successes: the upper bound is z² / (n + z²) in closed form
    assert wilson_interval(0, 10) == pytest.approx((0.0, 3.841459 / 13.841459), abs=1e-6)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_small_test_set_states_the_wilson_interval(iris_facts: dict[str, Any]) -> None:
    matrix = iris_facts["metrics"]["confusion_matrix"]["matrix"]
    correct, rows = sum(matrix[i][i] for i in range(len(matrix))), sum(map(sum, matrix))
    lo, hi = wilson_interval(correct, rows)
    card = render_model_card(iris_facts)
    assert f"| accuracy | {correct / rows:.4f} (95 % CI {lo:.4f}–{hi:.4f}, Wilson) |" in card
    small = [b for b in bullets(card) if b.startswith("Small test set")]
    assert len(small) == 1 and f"{lo:.4f}–{hi:.4f}" in small[0] and f"{rows} rows" in small[0]
    # 4,000 rows: the interval is narrow, and the limitation is gone
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 4_000)
    big = classification_facts(truth.tolist(), np.where(rng.random(4_000) < 0.9, truth, 1 - truth).tolist())
    assert not [b for b in bullets(render_model_card(big)) if b.startswith("Small test set")]


def test_class_imbalance_and_majority_baseline() -> None:
    truth = ["ok"] * 180 + ["fraud"] * 20
    always_ok = classification_facts(truth, ["ok"] * 200)
    text = " ".join(bullets(render_model_card(always_ok)))
    assert "no better than always predicting the most frequent class `ok` (90.0% of the test rows)" in text
    assert "Class imbalance: `fraud` has 20 test rows (10.0%) against 180 for `ok`" in text
    assert "lowest recall 0.0000 (class `fraud`)" in text
    balanced = classification_facts(["a"] * 50 + ["b"] * 50, ["a"] * 45 + ["b"] * 5 + ["b"] * 50)
    text = " ".join(bullets(render_model_card(balanced)))
    assert "imbalance" not in text and "no better than" not in text


def test_classes_with_few_or_no_test_rows_are_flagged() -> None:
    metrics = evaluate_classification(np.array(["a"] * 40 + ["b"] * 30 + ["c"] * 4),
                                      np.array(["a"] * 40 + ["b"] * 30 + ["c"] * 4), None, ["a", "b", "c", "d"])
    text = " ".join(limitations({"metrics": metrics}, "classification"))
    assert "No test rows for class `d`" in text and "Per-class figures for `c` rest on fewer than 10" in text


def test_dropped_columns_and_small_training_set(messy_classification: Split, iris_facts: dict[str, Any]) -> None:
    _, fitted = fit("logistic_regression", "classification", messy_classification)
    assert fitted["dropped"]
    card = render_model_card({"task": "classification", "fit": fitted})
    text = " ".join(bullets(card))
    for dropped in fitted["dropped"]:
        assert f"`{dropped['name']}`" in text
    assert f"The model ignores {len(fitted['dropped'])} column(s)" in text
    assert f"Trained on {fitted['n_rows']} rows only" in text
    assert "| `comment` | text |" in card  # the "Columns not used" table
    iris_text = " ".join(bullets(render_model_card(iris_facts)))
    assert "ignores" not in iris_text
    large = {**iris_facts, "fit": {**iris_facts["fit"], "n_rows": 50_000}}
    assert "rows only" not in " ".join(bullets(render_model_card(large)))


def test_parity_limitation_only_when_not_exact(iris_facts: dict[str, Any]) -> None:
    assert iris_facts["parity"]["label_agreement"] == 1.0
    assert "does not exactly reproduce" not in render_model_card(iris_facts)
    off = {**iris_facts, "parity": {"rows": 38, "label_agreement": 37 / 38, "max_abs_diff_proba": 0.02}}
    text = " ".join(bullets(render_model_card(off)))
    assert "does not exactly reproduce" in text and "label agreement 97.37%" in text and "0.0200" in text
    regression = limitations({"parity": {"rows": 10, "max_abs_diff": 3e-6, "max_rel_diff": 1e-7}}, "regression")
    assert not any("reproduce" in b for b in regression)


def test_automl_method_and_search_limitations(iris: Split, iris_facts: dict[str, Any]) -> None:
    result = tune(iris.X_train, iris.y_train, task="classification", trainers=["logistic_regression"], n_trials=4,
                  cv_folds=2, pruner="none")
    tuning = result.to_dict()
    facts = {**iris_facts, "tuning": tuning, "fit": tuning["fit"], "budget": {"n_trials": 4}}
    card = render_model_card(facts)
    assert "(chosen by an AutoML search)" in card
    assert (f"4 trials (4 complete), budget 4 trials, stopped by its trial budget. Each trial was scored by 2-fold "
            f"stratified cross-validation on {len(iris.X_train)} rows with `f1_macro`") in card
    assert f"CV `f1_macro` = **{tuning['best_score']:.4f}**" in card
    assert "biased upward" not in card and "longer search" not in card  # 4 trials, stopped by its budget
    many = {**tuning, "trials": tuning["trials"] * 3, "stop_reason": "timeout", "counts": {"complete": 10, "fail": 2}}
    text = " ".join(bullets(render_model_card({**facts, "tuning": many})))
    assert f"The CV `f1_macro` of {tuning['best_score']:.4f} is the best of 12 trials" in text
    assert f"({iris_facts['metrics']['f1_macro']:.4f}) is the estimate to rely on" in text
    assert "stopped (timeout) after 12 trials" in text and "2 of 12 trials failed" in text


def test_regression_card(diabetes: Split) -> None:
    trainer, fitted = fit("linear_regression", "regression", diabetes)
    metrics = evaluate_regression(diabetes.y_test, trainer.predict(diabetes.X_test))
    card = render_model_card({"name": "diabetes", "task": "regression", "fit": fitted, "metrics": metrics})
    assert f"| R² | {metrics['r2']:.4f} |" in card and f"| MAE | {metrics['mae']:,.2f} |" in card
    assert f"| RMSE | {metrics['rmse']:,.2f} |" in card
    q = metrics["residuals"]["quantiles"]
    assert f"90 % of test rows between {q['p05']:,.2f} and {q['p95']:,.2f}" in card
    assert "Per class" not in card and "Wilson" not in card
    negative = limitations({"metrics": {**metrics, "r2": -0.3}}, "regression")
    assert any("worse than the mean" in b for b in negative)
    assert not any("worse than the mean" in b for b in limitations({"metrics": metrics}, "regression"))


def test_clustering_card(iris: Split) -> None:
    trainer, fitted = fit("kmeans", "clustering", iris, n_clusters=3)
    metrics = evaluate_clustering(iris.X_test.to_numpy(), trainer.predict(iris.X_test))
    card = render_model_card({"task": "clustering", "fit": fitted, "metrics": metrics})
    assert f"| silhouette | {metrics['silhouette']:.4f} |" in card and "| clusters | 3 |" in card
    for cluster, size in metrics["cluster_sizes"].items():
        assert f"| `{cluster}` | {size} |" in card
    weak = limitations({"metrics": {**metrics, "silhouette": 0.1}}, "clustering")
    assert any("clusters overlap" in b for b in weak)


def test_user_strings_are_escaped_in_text_and_tables() -> None:
    facts = {
        "name": "bad|name*<script>", "description": "line one\nline | two [link](http://x)",
        "task": "classification",
        "fit": {"trainer": "t", "n_rows": 10, "features": ["a|b", "c\nd", "e`f"],
                "dropped": [{"name": "x|y", "type": "text", "reason": "free\ntext | too long"}], "params": {}},
        "signature": {"inputs": [{"name": "a|b", "type": "float32", "shape": [None, 1]}]},
    }
    card = render_model_card(facts)
    assert card.startswith("# Model card: bad|name\\*\\<script\\>\n")
    assert "line one line | two \\[link\\](http://x)" in card and "<script>" not in card
    assert "`e'f`" in card  # a backtick cannot be escaped inside a code span
    for line in card.splitlines():
        if line.startswith("|"):
            header_cells = 3 if ("type" in line or "---|---|---|" in line or "x\\|y" in line or "a\\|b" in line) \
                else 2
            assert columns(line) == header_cells, line
    assert "| `x\\|y` | text | free text \\| too long |" in card
    assert "| `a\\|b` | float32 | `[None, 1]` |" in card


def test_pure_and_deterministic(iris_facts: dict[str, Any]) -> None:
    before = copy.deepcopy(iris_facts)
    assert render_model_card(iris_facts) == render_model_card(iris_facts)
    assert iris_facts == before


def test_minimal_facts_still_give_a_card() -> None:
    card = render_model_card({})
    assert card.startswith("# Model card: unnamed model\n")
    assert bullets(card)[0] == "No test metrics were recorded: the model's quality on unseen rows is unknown."
    assert "Evaluated only on held-out rows of the training dataset" in bullets(card)[-1]


def test_library_versions_without_importing_torch() -> None:
    code = ("import sys; from aimaas.training.model_card import library_versions; v = library_versions(); "
            "print(sorted(v), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    names, torch_loaded = out.stdout.rsplit(" ", 1)
    assert torch_loaded.strip() == "False"
    versions = library_versions()
    import sklearn

    assert versions["scikit-learn"] == sklearn.__version__
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
    assert {"aimaas", "numpy", "pandas", "onnx", "onnxruntime", "optuna"} <= set(versions)
    assert "python" in names


def test_runner_signature_and_run_notes() -> None:
    facts = {"task": "classification", "trainer": "mlp", "notes": ["3 folds were used | not 5"],
             "signature": {"input_kind": "columns",
                           "inputs": [{"name": "age", "type": "integer", "role": "numeric", "dtype": "float32"}],
                           "outputs": [{"role": "label", "name": "label"}], "classes": ["no", "yes"]}}
    card = render_model_card(facts)
    assert "Input kind: `columns`." in card
    assert "| name | role | type | dtype |\n|---|---|---|---|\n| `age` | `numeric` | integer | float32 |" in card
    assert "| name | role |\n|---|---|\n| `label` | `label` |" in card
    assert "Classes (2): `no`, `yes`." in card
    assert "Notes from the run:\n\n- 3 folds were used | not 5" in card
    assert "A single trainer, `mlp`.\n" in card  # no hyperparameters or row count to speak of


def test_per_class_table_keeps_the_weakest_classes_when_there_are_many() -> None:
    rng = np.random.default_rng(0)
    labels = [f"c{i:02d}" for i in range(64)]
    truth = rng.integers(0, 64, 3_000)
    pred = np.where(rng.random(3_000) < 0.7, truth, rng.integers(0, 64, 3_000))
    metrics = evaluate_classification(np.array(labels)[truth], np.array(labels)[pred], None, labels)
    card = render_model_card({"task": "classification", "metrics": metrics})
    table = card.split("Per class (the 20 lowest F1 of 64 classes):\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(table) == 2 + 20
    worst = sorted(metrics["per_class"], key=lambda r: r["f1"])[:20]
    assert [line.split("`")[1] for line in table[2:]] == [r["label"] for r in worst]
