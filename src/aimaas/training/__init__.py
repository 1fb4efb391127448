"""The training library: trainers registered by name, preprocessing from a dataset schema, ONNX export with
an ONNX Runtime parity check, and evaluation metrics.

Importing this package is cheap: scikit-learn, LightGBM, skl2onnx and onnxruntime are imported by the
functions that need them. Nothing here is pickled; models leave a worker as ONNX bytes. See docs/training.md.
"""

from __future__ import annotations

from aimaas.training.base import (
    FitResult,
    Report,
    TaskKind,
    Trainer,
    TrialLike,
    get_trainer,
    register_trainer,
    trainer_names,
    trainers_for,
)
from aimaas.training.evaluation import (
    evaluate_classification,
    evaluate_clustering,
    evaluate_regression,
    permutation_importance_table,
)
from aimaas.training.lightgbm_trainer import LightGBMTrainer
from aimaas.training.onnx_check import OnnxOutput, model_metadata, parity, run_onnx
from aimaas.training.pipeline import PipelineTrainer
from aimaas.training.preprocessing import FeaturePlan, build_preprocessor, coerce_frame, infer_schema, plan_features
from aimaas.training.sklearn_trainers import (
    HistGradientBoostingTrainer,
    KMeansTrainer,
    LinearRegressionTrainer,
    LogisticRegressionTrainer,
    RandomForestTrainer,
)
from aimaas.training.tuning import TuningResult, evaluate_on_test, tune

__all__ = [
    "TuningResult",
    "evaluate_on_test",
    "tune",
    "FeaturePlan",
    "FitResult",
    "HistGradientBoostingTrainer",
    "KMeansTrainer",
    "LightGBMTrainer",
    "LinearRegressionTrainer",
    "LogisticRegressionTrainer",
    "OnnxOutput",
    "PipelineTrainer",
    "RandomForestTrainer",
    "Report",
    "TaskKind",
    "Trainer",
    "TrialLike",
    "build_preprocessor",
    "coerce_frame",
    "evaluate_classification",
    "evaluate_clustering",
    "evaluate_regression",
    "get_trainer",
    "infer_schema",
    "model_metadata",
    "parity",
    "permutation_importance_table",
    "plan_features",
    "register_trainer",
    "run_onnx",
    "trainer_names",
    "trainers_for",
]
