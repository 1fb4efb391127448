"""Save the reference model in MLflow's own format (an MLflow Model directory).

Run with the MLflow venv's Python.  Usage: python export_mlflow.py STATE_DIR
Writes STATE_DIR/models/mlflow (replaced if present).
"""
import json
import os
import shutil
import sys

import joblib
import mlflow
import mlflow.sklearn
import numpy as np
import sklearn
from mlflow.models import infer_signature


def main() -> None:
    state = sys.argv[1]
    model = joblib.load(os.path.join(state, "model", "model.joblib"))
    with open(os.path.join(state, "rows", "rows32.json")) as f:
        example = np.asarray(json.load(f), dtype=np.float64)
    out = os.path.join(state, "models", "mlflow")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    # A numpy example gives a tensor signature (float64, shape (-1, 30)), so the
    # documented request is {"inputs": [[...30 floats...], ...]}.
    signature = infer_signature(example, model.predict(example))
    mlflow.sklearn.save_model(
        sk_model=model,
        path=out,
        signature=signature,
        input_example=example[:2],
        # explicit requirements skip MLflow's requirement inference (slow, and
        # unused with --env-manager local)
        pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
    )
    with open(os.path.join(out, "MLmodel")) as f:
        fmt = [line.strip() for line in f if "serialization_format" in line]
    print(f"saved MLflow model (mlflow {mlflow.__version__}; {fmt[0] if fmt else 'format ?'})")


if __name__ == "__main__":
    main()
