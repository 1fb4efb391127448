"""Train the one reference model and write the request bodies every peer uses.

(From the project's shared peer harness, bench/peers/train.py; model/lr.json was added for the aimaas
peer.) Run with any Python that has scikit-learn (the harness uses the FastAPI venv).
Usage: python train.py STATE_DIR

Writes into STATE_DIR:
  model/model.joblib          the fitted LogisticRegression (plain joblib pickle)
  model/meta.json             versions, accuracy, feature names
  model/lr.json               the fitted parameters (coef_, intercept_, classes_) as JSON, so a
                              Python without this pickle's scikit-learn rebuilds the same model
  rows/rows{N}.json           N input rows (list of lists of 30 floats)
  rows/expected{N}.json       the model's predicted labels for those rows
"""
import json
import os
import sys
import time
import warnings

import joblib
import numpy as np
import sklearn
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

BATCHES = (1, 32)


def main() -> None:
    state = sys.argv[1]
    os.makedirs(os.path.join(state, "model"), exist_ok=True)
    os.makedirs(os.path.join(state, "rows"), exist_ok=True)

    ds = load_breast_cancer()
    X = np.ascontiguousarray(ds.data, dtype=np.float64)
    y = ds.target
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    # Plain LogisticRegression on the raw 30 features, fitted on a numpy array
    # (no feature names), so every server can pass it a 2-D float array.
    model = LogisticRegression(max_iter=10000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fail loudly on a ConvergenceWarning
        model.fit(X_tr, y_tr)
    acc = float(model.score(X_te, y_te))

    joblib.dump(model, os.path.join(state, "model", "model.joblib"))
    # float repr round-trips exactly: the rebuilt model has bit-identical parameters
    with open(os.path.join(state, "model", "lr.json"), "w") as f:
        json.dump({"coef": model.coef_.tolist(), "intercept": model.intercept_.tolist(),
                   "classes": [int(c) for c in model.classes_], "params": model.get_params()}, f, default=str)

    def predict_us(rows, n=1000):
        times = []
        for _ in range(n):
            t = time.perf_counter()
            model.predict(rows)
            times.append(time.perf_counter() - t)
        times.sort()
        return times[len(times) // 2] * 1e6

    rng = np.random.default_rng(0)
    idx = rng.choice(X.shape[0], size=max(BATCHES), replace=False)
    # median of 1000 calls, best of 3 interleaved rounds (after a warm-up round)
    inproc = {str(n): float("inf") for n in BATCHES}
    for rnd in range(4):
        for n in BATCHES:
            us = predict_us(X[idx[:n]])
            if rnd:
                inproc[str(n)] = round(min(inproc[str(n)], us), 1)
    for n in BATCHES:
        rows = X[idx[:n]]
        pred = model.predict(rows)
        with open(os.path.join(state, "rows", f"rows{n}.json"), "w") as f:
            json.dump(rows.tolist(), f)  # float repr round-trips exactly
        with open(os.path.join(state, "rows", f"expected{n}.json"), "w") as f:
            json.dump([int(v) for v in pred], f)

    meta = {
        "dataset": "sklearn.datasets.load_breast_cancer",
        "n_samples": int(X.shape[0]),
        "n_features": int(X.shape[1]),
        "model": "LogisticRegression(max_iter=10000)",
        "test_accuracy": round(acc, 4),
        "scikit_learn": sklearn.__version__,
        "numpy": np.__version__,
        # median wall time of one in-process model.predict call, by batch rows
        "inprocess_predict_us": inproc,
        "feature_names": [str(s) for s in ds.feature_names],
    }
    with open(os.path.join(state, "model", "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"trained LogisticRegression: test accuracy {acc:.4f} (sklearn {sklearn.__version__}); "
          f"in-process predict median us by rows: {inproc}")


if __name__ == "__main__":
    main()
