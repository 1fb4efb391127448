"""Rollout benchmark: move an alias from version 1 to 2 (and back) under 64 connections of predict load.

A real ``python -m aimaas serve`` (fresh AIMAAS_HOME in a temporary directory) gets two versions of the
reference model of ``peers.sh`` (scikit-learn LogisticRegression on breast_cancer, exported to ONNX by aimaas'
own ``export_pipeline``): version 1 is that model (``max_iter=10000``), version 2 the same with ``C=0.1``
(different probabilities, same label for the request's row). The alias ``prod`` points at version 1 and the
endpoint serves ``bc@prod`` (min_replicas 1, batching on), so moving the alias is the rollout.

wrk (1 thread, 64 connections, the harness's ``post.lua`` with the admin key) POSTs one row and checks every
answer: status 200 and the expected label; one more connection (:class:`aimaas_peer.Probe`) times each of its
own requests, because wrk's latency percentiles are biased upward when a server stalls. First a baseline
window with no move, then a window during which the alias moves to 2 and, once every replica serves 2, back to
1. Printed: requests, p50/p99 (wrk's and the probe's), max, non-2xx, socket errors, wrong answers, answers per
version, and how long each move took to complete (alias set -> every live replica on the new version, from the
endpoint's status).

    python benchmarks/serving/rollout.py [--connections 64] [--baseline 10] [--duration 20] [--keep]

Needs wrk (apt-get install wrk). 2-CPU machines: wrk and the server share the CPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aimaas_peer as ap


def models() -> tuple[bytes, bytes, list[str], dict[str, Any], int]:
    """ONNX bytes of versions 1 and 2, the feature names, one request row (as a dict) and its label."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    ds = load_breast_cancer()
    X = np.ascontiguousarray(ds.data, dtype=np.float64)
    X_tr, _, y_tr, _ = train_test_split(X, ds.target, test_size=0.25, random_state=0, stratify=ds.target)
    v1 = LogisticRegression(max_iter=10000).fit(X_tr, y_tr)  # train.py's model
    v2 = LogisticRegression(max_iter=10000, C=0.1).fit(X_tr, y_tr)
    names = [str(n) for n in ds.feature_names]
    idx = np.random.default_rng(0).choice(X.shape[0], size=32, replace=False)  # train.py's benchmark rows
    row = next(X[i] for i in idx if v1.predict(X[i:i + 1])[0] == v2.predict(X[i:i + 1])[0])
    label = int(v1.predict(row.reshape(1, -1))[0])
    data1, data2 = ap.onnx_bytes(v1, names, params={"C": 1.0}), ap.onnx_bytes(v2, names, params={"C": 0.1})
    for data in (data1, data2):
        if ap.onnx_labels(data, names, [row.tolist()]) != [label]:
            raise SystemExit("the ONNX graphs disagree with scikit-learn on the request row")
    return data1, data2, names, dict(zip(names, row.tolist(), strict=True)), label


def move(client: Any, alias_to: int, log: list[dict[str, Any]], t0: float) -> None:
    """Point ``prod`` at ``alias_to`` and wait until the endpoint serves only that version."""
    started = time.perf_counter()
    ap.set_alias(client, "bc", "prod", alias_to)
    ap.wait_ready(client, "bc", version=alias_to, timeout=120)
    log.append({"to": alias_to, "at_s": round(started - t0, 2), "took_s": round(time.perf_counter() - started, 2)})


def load_window(server: ap.Server, work: Path, connections: int, seconds: float,
                moves: list[tuple[float, int]] | None = None,
                ) -> tuple[dict[str, Any], list[dict[str, Any]], float, ap.Probe]:
    """One wrk window; ``moves`` = [(at fraction of the window, version)] run in order from a thread."""
    env = {"WRK_BODY_FILE": str(work / "body.json"), "WRK_EXPECT_LABELS": str(work / "labels.json"),
           "WRK_EXPECT_FILE": str(work / "expect.json"), "WRK_AUTH_FILE": str(server.home / "admin.key"),
           "WRK_COUNT_VERSIONS": "1"}
    log: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    cpu0 = ap.tree_cpu_seconds(server.process.pid)
    t0 = time.perf_counter()
    proc = ap.wrk(server.url + ap.predict_path("bc"), "post.lua", connections=connections, duration=seconds, env=env)
    probe = ap.Probe(server.url + ap.predict_path("bc"), [(work / "body.json").read_bytes()], seconds,
                     {"Authorization": f"Bearer {server.key}"})
    probe.start()

    def mover() -> None:
        try:
            with server.client() as client:
                for fraction, version in moves or []:
                    time.sleep(max(0.0, t0 + fraction * seconds - time.perf_counter()))
                    move(client, version, log, t0)
        except BaseException as exc:  # reported after the window
            errors.append(exc)

    thread = threading.Thread(target=mover, daemon=True)
    thread.start()
    result = ap.wrk_result(proc)
    thread.join(timeout=150)
    probe.join()
    cpu = ap.tree_cpu_seconds(server.process.pid) - cpu0
    if errors:
        raise SystemExit(f"moving the alias failed: {errors[0]}")
    return result, log, 100.0 * cpu / result["seconds"], probe


def row(name: str, r: dict[str, Any], cpu_pct: float, probe: ap.Probe) -> str:
    non2xx = r["s3xx"] + r["s4xx"] + r["s5xx"]
    versions = ", ".join(f"v{k}: {v}" for k, v in sorted(r["versions"].items())) or "-"
    return (f"| {name} | {r['requests']} | {r['requests'] / r['seconds']:.0f} | {r['p50_us'] / 1000:.1f} "
            f"| {r['p99_us'] / 1000:.1f} | {probe.percentile_ms(50):.1f} | {probe.percentile_ms(99):.1f} "
            f"| {r['lat_max_us'] / 1000:.0f} | {non2xx} | {r['socket_errors']} | {probe.errors} "
            f"| {r['mismatch']} | {versions} | {cpu_pct:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--baseline", type=float, default=10, help="seconds of load without a move")
    parser.add_argument("--duration", type=float, default=20, help="seconds of load around the two moves")
    parser.add_argument("--max-batch-size", type=int, default=None, help="endpoint setting (default: server's)")
    parser.add_argument("--max-replicas", type=int, default=None, help="endpoint setting (default: server's)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (server log, bodies)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aimaas-bench-rollout-"))
    try:
        data1, data2, _, request_row, label = models()
        (work / "body.json").write_text(json.dumps({"inputs": [request_row]}))
        (work / "labels.json").write_text(json.dumps([label]))
        with ap.running_server(work / "home") as server, server.client() as client:
            assert ap.import_model(client, "bc", data1, "bc-v1.onnx") == 1
            assert ap.import_model(client, "bc", data2, "bc-v2.onnx") == 2
            ap.set_alias(client, "bc", "prod", 1)
            ep = ap.deploy(client, "bc", "bc@prod", min_replicas=1, max_batch_size=args.max_batch_size,
                           max_replicas=args.max_replicas)
            first = client.post(ap.predict_path("bc"), content=(work / "body.json").read_bytes(),
                                headers={"Content-Type": "application/json"})
            if first.status_code != 200 or [p["label"] for p in first.json()["predictions"]] != [label]:
                raise SystemExit(f"unexpected first answer: {first.status_code} {first.text[:300]}")
            (work / "expect.json").write_bytes(first.content)
            # warm-up, then the two windows
            load_window(server, work, args.connections, 3)
            base, _, base_cpu, base_probe = load_window(server, work, args.connections, args.baseline)
            during, log, during_cpu, during_probe = load_window(server, work, args.connections, args.duration,
                                                                moves=[(0.15, 2), (0.55, 1)])
            replicas = len(ap.endpoint(client, "bc")["status"]["replicas"])
        print(f"\nRollout under load - {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
              f"(shared with other work), Python {platform.python_version()}; endpoint max_batch_size "
              f"{ep['max_batch_size']}, max_wait_ms {ep['max_wait_ms']}, {replicas} replica(s) at the end; wrk 1 "
              f"thread, {args.connections} connections, 1 row per request, admin key\n")
        print("| window | requests | req/s | wrk p50 ms | wrk p99 ms | probe p50 ms | probe p99 ms | max ms | non-2xx "
              "| socket errors | probe errors | wrong answers | answers by version | server CPU % |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
        print(row(f"baseline ({args.baseline:.0f} s, no move)", base, base_cpu, base_probe))
        print(row(f"alias moves 1->2->1 ({args.duration:.0f} s)", during, during_cpu, during_probe))
        print()
        for m in log:
            print(f"- alias prod -> {m['to']} at {m['at_s']:.1f} s: every live replica on version {m['to']} "
                  f"{m['took_s']:.2f} s later")
        non2xx = during["s3xx"] + during["s4xx"] + during["s5xx"]
        failures = non2xx + during["socket_errors"] + during["mismatch"] + during_probe.errors
        print(f"\nTarget: zero non-2xx during the move: {'met' if failures == 0 else 'NOT met'} "
              f"({non2xx} non-2xx, {during['socket_errors']} socket errors, {during['mismatch']} wrong answers).")
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
