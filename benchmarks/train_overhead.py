"""Training job overhead: how long from `POST /api/v1/train` until the search is running, and until the model
is registered, for a tiny search (one trial on iris), through a real server with the local executor.

    python benchmarks/train_overhead.py [--runs 5]

Prints one row per run and the median. The issue's target: submit → first trial running under 1 s.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(home: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMAAS_")}
    env.update({"AIMAAS_HOME": str(home), "AIMAAS_PORT": str(port), "AIMAAS_LOG_LEVEL": "warning"})
    proc = subprocess.Popen([sys.executable, "-m", "aimaas", "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200 and (home / "admin.key").exists():
                return proc, url, (home / "admin.key").read_text().strip()
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def _iris() -> bytes:
    from sklearn.datasets import load_iris

    bunch = load_iris()
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["a", "b", "c", "d", "species"])
    for x, t in zip(bunch.data, bunch.target, strict=True):
        writer.writerow([*x, bunch.target_names[t]])
    return buf.getvalue().encode()


def _time(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, key = _start(Path(tmp) / "home")
        try:
            client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120)
            client.post("/api/v1/datasets/iris/versions", params={"filename": "iris.csv"}, content=_iris())
            rows = []
            print(f"{'run':>3} {'submit→running':>15} {'submit→searching':>17} {'submit→registered':>18}")
            for run in range(args.runs):
                sent = time.time()
                job = client.post("/api/v1/train", json={"dataset": "iris", "target": "species", "max_trials": 1,
                                                         "model": "overhead", "trainers": ["logistic_regression"]})
                job_id = job.json()["id"]
                while (state := client.get(f"/api/v1/jobs/{job_id}").json())["state"] in ("queued", "running"):
                    time.sleep(0.05)
                done = time.time()
                events = client.get(f"/api/v1/jobs/{job_id}/events").json()["items"]
                running = next(_time(e["time"]) for e in events if e["type"] == "state")
                searching = next(_time(e["time"]) for e in events
                                 if e["type"] == "log" and e["payload"]["fields"].get("phase") == "searching")
                rows.append((running - sent, searching - sent, done - sent))
                print(f"{run:>3} {rows[-1][0]:>14.3f}s {rows[-1][1]:>16.3f}s {rows[-1][2]:>17.3f}s  {state['state']}")
            medians = [statistics.median(r[i] for r in rows) for i in range(3)]
            print(f"{'med':>3} {medians[0]:>14.3f}s {medians[1]:>16.3f}s {medians[2]:>17.3f}s")
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
