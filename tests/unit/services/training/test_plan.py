"""resolve_plan: deciding ``auto`` and refusing bad requests from the version's schema and stats alone."""

from __future__ import annotations

from typing import Any

import pytest

from aimaas.domain import DatasetVersion, utcnow
from aimaas.errors import InvalidInput
from aimaas.services.training.plan import DEFAULT_BUDGET_S, resolve_plan
from aimaas.training.base import TaskKind


def version(columns: list[tuple[str, str, dict[str, Any]]], *, fmt: str = "csv", rows: int = 100) -> DatasetVersion:
    schema = [{"name": n, "type": t, "missing": 0} for n, t, _ in columns]
    stats = {"num_rows": rows, "columns": [{"name": n, "type": t, "count": rows, "missing": 0, **extra}
                                           for n, t, extra in columns]}
    return DatasetVersion(id="dv1", dataset_id="ds1", tenant_id="t1", version=1, format=fmt, sha256="0" * 64,
                          size_bytes=1, artifact_key="k", filename="f.csv", num_rows=rows, schema=schema, stats=stats,
                          created_at=utcnow(), target_suggestion=None)


def classes(**counts: int) -> dict[str, Any]:
    return {"unique": len(counts), "top": [{"value": k, "count": v} for k, v in counts.items()]}


TABLE = version([("x", "float", {"min": 0.0, "max": 1.0}), ("n", "integer", {"min": 0, "max": 500}),
                 ("grade", "integer", {"min": 1, "max": 5}), ("price", "float", {"min": 1.0, "max": 9.0}),
                 ("species", "string", classes(a=40, b=30, c=30)), ("flat", "float", {"min": 2.0, "max": 2.0}),
                 ("one", "string", classes(a=100)), ("rare", "string", classes(a=97, b=3)),
                 ("ident", "string", {"unique": 100, "top": [{"value": "r1", "count": 1}], "estimated": False})])


@pytest.mark.parametrize(("target", "task"), [("species", TaskKind.CLASSIFICATION), ("price", TaskKind.REGRESSION),
                                             ("grade", TaskKind.CLASSIFICATION), ("n", TaskKind.REGRESSION)])
def test_auto_picks_the_task_from_the_target(target: str, task: TaskKind) -> None:
    plan = resolve_plan({"target": target}, TABLE, "d")
    assert plan.task is task and plan.modality == "tabular" and plan.budget_s == DEFAULT_BUDGET_S
    assert plan.metric == ("f1_macro" if task is TaskKind.CLASSIFICATION else "r2")


@pytest.mark.parametrize(
    ("request_", "param", "words"),
    [
        ({}, "target", "Give the target"),
        ({"target": "nope"}, "target", "no column 'nope'"),
        ({"target": "species", "task": "regression"}, "target", "numeric target"),
        ({"target": "flat", "task": "regression"}, "target", "same value"),
        ({"target": "one"}, "target", "single class"),
        ({"target": "rare"}, "target", "only 3 row"),
        ({"target": "ident"}, "target", "identifier"),
        ({"target": "species", "metric": "rmse"}, "metric", "does not apply"),
        ({"target": "species", "trainer": "nope"}, "trainer", "Unknown trainer"),
        ({"target": "species", "trainer": "random_forest", "params": {"depth": 2}}, "depth", "no hyperparameter"),
        ({"target": "species", "params": {"C": 1}}, "params", "name it with trainer"),
        ({"target": "species", "trainer": "linear_regression"}, "trainer", "does not do classification"),
        ({"target": "species", "trainer": "lightgbm", "trainers": ["lightgbm"]}, "trainers", "not both"),
        ({"target": "species", "task": "image"}, "task", "image-folder"),
        ({"target": "species", "text_column": "x"}, "text_column", "task text only"),
    ],
)
def test_bad_requests_name_the_problem(request_: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(InvalidInput) as err:
        resolve_plan(request_, TABLE, "d")
    assert err.value.param == param and words in err.value.message


def test_explicit_trainer_keeps_its_params_and_needs_no_default_budget() -> None:
    plan = resolve_plan({"target": "species", "trainer": "random_forest", "params": {"n_estimators": 10}}, TABLE, "d")
    assert (plan.trainer, plan.params, plan.budget_s) == ("random_forest", {"n_estimators": 10}, None)
    assert resolve_plan({"target": "species", "max_trials": 5}, TABLE, "d").budget_s is None


def test_clustering_needs_no_target() -> None:
    plan = resolve_plan({"task": "clustering"}, TABLE, "d")
    assert plan.task is TaskKind.CLUSTERING and plan.target is None and plan.metric == "silhouette"


def test_text_and_image_datasets() -> None:
    answers = version([("question", "string", classes(q1=50, q2=50)), ("answer", "text", {"unique": 100}),
                       ("label", "string", classes(correct=60, incorrect=40))])
    plan = resolve_plan({"target": "label"}, answers, "a")
    assert (plan.task, plan.modality, plan.text_column, plan.trainer) == (TaskKind.CLASSIFICATION, "text",
                                                                          "answer", "text_embedding")
    images = version([("path", "image", {}), ("label", "label", {"label_counts": {"0": 50, "1": 50}})],
                     fmt="image_zip")
    plan = resolve_plan({}, images, "digits")
    assert (plan.modality, plan.target, plan.trainer) == ("image", "label", "cnn")
    one_image_class = version([("path", "image", {}), ("label", "label", {"label_counts": {"0": 50}})],
                              fmt="image_zip")
    with pytest.raises(InvalidInput, match="single class"):
        resolve_plan({}, one_image_class, "x")
    with pytest.raises(InvalidInput, match="unlabelled documents"):
        resolve_plan({"target": "t"}, version([("text", "text", {})], fmt="text"), "docs")
