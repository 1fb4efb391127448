"""The aimaas side of the serving benchmarks: the reference model as an aimaas ONNX version, a server, endpoints.

Used by ``peers.sh`` (the ``aimaas`` peers) and by ``rollout.py`` / ``embeddings.py``. Runs with the repo's
``.venv`` Python (it imports ``aimaas``, scikit-learn, skl2onnx and httpx).

    python aimaas_peer.py export STATE_DIR
        read STATE_DIR/model/lr.json + meta.json (written by train.py) and write
        STATE_DIR/models/aimaas/model.onnx: the *same* fitted LogisticRegression (bit-identical
        parameters) behind a pass-through ColumnTransformer, exported by aimaas' own export_pipeline
        with its aimaas.* metadata (30 float inputs named after the breast_cancer columns)
    python aimaas_peer.py deploy URL KEY_FILE ONNX_FILE ENDPOINT [--max-batch-size N] [--max-wait-ms MS]
                                 [--max-replicas N]
        import the file as a new version of the model ENDPOINT, deploy it with min_replicas 1, wait until
        ready and print the endpoint's predict path (what wrk then loads)
    python aimaas_peer.py replicas URL KEY_FILE ENDPOINT
        print how many replicas the endpoint has now (the autoscaler may have added some under load)

Nothing here downloads anything; the server binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

API = "/api/v1"
READY_TIMEOUT_S = 300.0


def predict_path(endpoint: str) -> str:
    """The predict route of an endpoint (relative to the server's base URL)."""
    return f"{API}/endpoints/{endpoint}/predict"


# ---------------------------------------------------------------------------------------------- the model
def rebuild_lr(params_path: Path) -> Any:
    """A fitted scikit-learn LogisticRegression with the coefficients train.py wrote (bit-identical)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    data = json.loads(params_path.read_text())
    model = LogisticRegression(max_iter=int(data["params"].get("max_iter", 100)))
    model.coef_ = np.asarray(data["coef"], dtype=np.float64)
    model.intercept_ = np.asarray(data["intercept"], dtype=np.float64)
    model.classes_ = np.asarray(data["classes"])
    model.n_features_in_ = model.coef_.shape[1]
    return model


def onnx_bytes(model: Any, feature_names: list[str], *, params: dict[str, Any] | None = None) -> bytes:
    """aimaas ONNX bytes for a fitted classifier over raw float columns ``feature_names``.

    The pipeline is ``Pipeline([("pre", pass-through ColumnTransformer), ("est", model)])`` so the graph
    computes exactly ``model`` on the raw values (no imputation, no scaling), with the FeaturePlan and
    metadata aimaas' own training writes (rows are ``{"<column name>": value}`` dicts).
    """
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    from aimaas.training.base import TaskKind
    from aimaas.training.onnx_export import export_pipeline
    from aimaas.training.preprocessing import coerce_frame, plan_features

    sample = pd.DataFrame(np.zeros((2, len(feature_names))), columns=feature_names)
    plan = plan_features(sample)
    if [c.dtype for c in plan.columns] != ["float32"] * len(feature_names):
        raise SystemExit(f"unexpected feature plan: {plan}")
    pre = ColumnTransformer([("float", "passthrough", [c.input for c in plan.columns])], remainder="drop",
                            sparse_threshold=0.0)
    pre.fit(coerce_frame(sample, plan))
    pipeline = Pipeline([("pre", pre), ("est", model)])
    classes = [c.item() if hasattr(c, "item") else c for c in model.classes_]
    return export_pipeline(pipeline, plan, task=TaskKind.CLASSIFICATION, trainer="logistic_regression",
                           classes=classes, params=params or {})


def onnx_labels(data: bytes, feature_names: list[str], rows: list[list[float]]) -> list[int]:
    """Labels the ONNX graph gives for ``rows`` (float32 inputs, as the server feeds them)."""
    import numpy as np
    import onnxruntime as ort
    import pandas as pd

    from aimaas.training.preprocessing import coerce_frame, plan_features

    frame = pd.DataFrame(np.asarray(rows, dtype=np.float64), columns=feature_names)
    inputs = coerce_frame(frame, plan_features(frame))
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    feeds = {name: inputs[name].to_numpy().reshape(-1, 1) for name in inputs.columns}
    return [int(v) for v in session.run(["label"], feeds)[0].ravel()]


def cmd_export(state: Path) -> None:
    meta = json.loads((state / "model" / "meta.json").read_text())
    names = [str(n) for n in meta["feature_names"]]
    params = json.loads((state / "model" / "lr.json").read_text())["params"]
    model = rebuild_lr(state / "model" / "lr.json")
    data = onnx_bytes(model, names, params=params)
    for n in (1, 32):  # the graph must agree with the pickled model on the benchmark rows
        rows = json.loads((state / "rows" / f"rows{n}.json").read_text())
        expected = json.loads((state / "rows" / f"expected{n}.json").read_text())
        got = onnx_labels(data, names, rows)
        if got != expected:
            raise SystemExit(f"ONNX labels {got} differ from the model's {expected} on rows{n}")
    out = state / "models" / "aimaas"
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.onnx").write_bytes(data)
    import sklearn

    print(f"exported the reference LogisticRegression to ONNX ({len(data)} bytes, scikit-learn "
          f"{sklearn.__version__}); labels agree with the pickled model on the benchmark rows")


# ---------------------------------------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running ``python -m aimaas serve``: base ``url``, the admin ``key``, its ``home`` and process."""

    url: str
    key: str
    home: Path
    process: subprocess.Popen[bytes]

    def client(self, timeout: float = 60) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=timeout)


def server_env(home: Path, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a benchmark server: the caller's minus any AIMAAS_* setting, plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMAAS_")}
    env.update({"AIMAAS_HOME": str(home), "AIMAAS_HOST": "127.0.0.1", "AIMAAS_PORT": str(port),
                "AIMAAS_LOG_LEVEL": "warning"})
    env.update(extra or {})
    return env


@contextlib.contextmanager
def running_server(home: Path, *, extra_env: dict[str, str] | None = None, timeout: float = 120) -> Iterator[Server]:
    """Start ``python -m aimaas serve`` on a free loopback port with ``AIMAAS_HOME=home``; stop it (SIGTERM,
    then SIGKILL after 30 s) on exit. Its log goes to ``home/../<home name>-server.log``."""
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    log_path = home.parent / f"{home.name}-server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "aimaas", "serve"], env=server_env(home, port, extra_env),
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        key_file = home / "admin.key"
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"aimaas serve exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200 and key_file.exists():
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"aimaas serve not ready after {timeout:.0f} s: {log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        yield Server(url, key_file.read_text().strip(), home, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------------------------------------- load
HERE = Path(__file__).resolve().parent


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (psutil)."""
    import psutil

    total = 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return total
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            total += t.user + t.system
    return total


def wrk(url: str, script: str, *, connections: int, duration: float, env: dict[str, str],
        timeout: str = "10s") -> subprocess.Popen[str]:
    """Start wrk (1 thread, ``connections`` connections, ``duration`` s) with a Lua script of this folder; the
    caller waits and reads its output with :func:`wrk_result`."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (peers.sh installs it too)")
    args = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", timeout,
            "-s", str(HERE / script), url]
    return subprocess.Popen(args, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def wrk_result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """The WRKJSON line of a finished wrk run as a dict (SystemExit with wrk's output when absent)."""
    out, _ = proc.communicate()
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            data: dict[str, Any] = json.loads(line[len("WRKJSON "):])
            data["seconds"] = data["duration_us"] / 1e6
            data["socket_errors"] = sum(data[k] for k in ("err_connect", "err_read", "err_write", "err_timeout"))
            return data
    raise SystemExit(f"wrk gave no result:\n{out[-2000:]}")


class Probe(threading.Thread):
    """One more closed-loop keep-alive connection beside wrk's that times each of its own requests (monotonic
    clock): wrk's latency percentiles are biased upward when the server stalls (see bench.py probe), so
    the benchmarks report this sample of the per-request latency beside them. ``bodies`` are sent in turn."""

    def __init__(self, url: str, bodies: list[bytes], seconds: float, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.bodies, self.seconds, self.headers = url, bodies, seconds, headers
        self.latencies: list[float] = []
        self.errors = 0

    def run(self) -> None:
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        end = time.perf_counter() + self.seconds
        i = 0
        while time.perf_counter() < end:
            t = time.perf_counter()
            try:
                conn.request("POST", parts.path, body=self.bodies[i % len(self.bodies)],
                             headers={"Content-Type": "application/json", **self.headers})
                resp = conn.getresponse()
                resp.read()
                self.errors += resp.status != 200
            except (OSError, http.client.HTTPException):
                self.errors += 1
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            self.latencies.append(time.perf_counter() - t)
            i += 1

    def percentile_ms(self, p: float) -> float:
        lat = sorted(self.latencies)
        return 1000 * lat[min(len(lat) - 1, int(p / 100 * len(lat)))] if lat else float("nan")


# ---------------------------------------------------------------------------------------------- the API
def _ok(resp: httpx.Response, what: str) -> Any:
    if resp.status_code >= 300:
        raise RuntimeError(f"{what}: HTTP {resp.status_code}: {resp.text[:500]}")
    return resp.json() if resp.content else None


def import_model(client: httpx.Client, name: str, data: bytes, filename: str, *, task: str | None = None) -> int:
    """Upload ``data`` as a new version of model ``name``; returns the version number."""
    params = {"filename": filename} | ({"task": task} if task else {})
    resp = client.post(f"{API}/models/{name}/import", params=params, content=data,
                       headers={"Content-Type": "application/octet-stream"}, timeout=600)
    return int(_ok(resp, f"import of {filename} as {name}")["version"])


def set_alias(client: httpx.Client, name: str, alias: str, version: int) -> None:
    _ok(client.put(f"{API}/models/{name}/aliases/{alias}", json={"version": version}), f"alias {name}@{alias}")


def endpoint(client: httpx.Client, name: str) -> dict[str, Any]:
    return dict(_ok(client.get(f"{API}/endpoints/{name}"), f"endpoint {name}"))


def deploy(client: httpx.Client, name: str, model: str, **settings: Any) -> dict[str, Any]:
    """Create endpoint ``name`` serving ``model`` (a ref) with ``settings`` and wait until it is ready."""
    body = {"name": name, "model": model} | {k: v for k, v in settings.items() if v is not None}
    _ok(client.post(f"{API}/endpoints", json=body), f"deploy of {model} as {name}")
    return wait_ready(client, name)


def wait_ready(client: httpx.Client, name: str, *, version: int | None = None,
               timeout: float = READY_TIMEOUT_S) -> dict[str, Any]:
    """Poll the endpoint until it is ``ready`` (and, with ``version``, every live replica serves that version)."""
    deadline = time.monotonic() + timeout
    while True:
        ep = endpoint(client, name)
        status = ep["status"]
        replicas = [r for r in status.get("replicas", []) if r["state"] != "draining"]
        if status["state"] == "failed":
            raise RuntimeError(f"endpoint {name} failed: {status.get('reason')}")
        if status["state"] == "ready" and (version is None or (
                status.get("version") == version and replicas and all(r["version"] == version for r in replicas))):
            return ep
        if time.monotonic() > deadline:
            raise RuntimeError(f"endpoint {name} not ready after {timeout:.0f} s: {status}")
        time.sleep(0.05)


def cmd_deploy(args: argparse.Namespace) -> None:
    key = Path(args.key_file).read_text().strip()
    started = time.perf_counter()
    with httpx.Client(base_url=args.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        version = import_model(client, args.endpoint, Path(args.onnx).read_bytes(), "model.onnx")
        ep = deploy(client, args.endpoint, f"{args.endpoint}/{version}", min_replicas=1,
                    max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
                    max_replicas=args.max_replicas)
    print(f"deployed {args.endpoint}/{version} in {time.perf_counter() - started:.1f} s: "
          f"max_batch_size={ep['max_batch_size']} max_wait_ms={ep['max_wait_ms']} "
          f"replicas={len(ep['status']['replicas'])}", file=sys.stderr)
    print(predict_path(args.endpoint))


def cmd_replicas(args: argparse.Namespace) -> None:
    key = Path(args.key_file).read_text().strip()
    with httpx.Client(base_url=args.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        print(len(endpoint(client, args.endpoint)["status"]["replicas"]))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("export")
    p.add_argument("state", type=Path)
    p = sub.add_parser("deploy")
    p.add_argument("url")
    p.add_argument("key_file")
    p.add_argument("onnx")
    p.add_argument("endpoint")
    p.add_argument("--max-batch-size", type=int, default=None)
    p.add_argument("--max-wait-ms", type=float, default=None)
    p.add_argument("--max-replicas", type=int, default=None)
    p = sub.add_parser("replicas")
    p.add_argument("url")
    p.add_argument("key_file")
    p.add_argument("endpoint")
    args = parser.parse_args(argv)
    if args.cmd == "export":
        cmd_export(args.state)
    elif args.cmd == "deploy":
        cmd_deploy(args)
    else:
        cmd_replicas(args)


if __name__ == "__main__":
    main(sys.argv[1:])
