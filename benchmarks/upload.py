"""Upload benchmark: a generated CSV (1 GB by default) sent to a real `aimaas serve`, beside a floor.

The floor is a bare FastAPI app that streams the request body to a file and does nothing else
(no hashing, no validation, no statistics): the fastest any HTTP upload on this machine can be.
aimaas streams to disk while hashing, then validates the whole file and computes schema and column
statistics in one streaming pass before answering, so its time includes all of that.

Prints one table; peak RSS is sampled every 20 ms from the server process (and its children).

    python benchmarks/upload.py [--size-mb 1024] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.conftest import free_port, start_server, stop_server  # noqa: E402

FLOOR_APP = textwrap.dedent(
    """
    import os
    from fastapi import FastAPI, Request
    app = FastAPI()

    @app.post("/upload")
    async def upload(request: Request):
        n = 0
        with open(os.environ["FLOOR_TARGET"], "wb") as fh:
            async for chunk in request.stream():
                fh.write(chunk)
                n += len(chunk)
        return {"bytes": n}
    """
)


def generate_csv(path: Path, size_mb: int, seed: int = 0) -> int:
    """Write ~size_mb MB of CSV: 10 numeric columns, 2 categorical, 1 free-text column."""
    rng = np.random.default_rng(seed)
    target = size_mb * 1024 * 1024
    words = np.array(
        [
            "the",
            "cell",
            "plant",
            "energy",
            "light",
            "water",
            "grows",
            "because",
            "when",
            "sun",
            "makes",
            "food",
            "leaf",
            "root",
        ]
    )
    cats = np.array(["math", "physics", "biology", "chemistry", "history"])
    with path.open("w", encoding="utf-8") as fh:
        fh.write(",".join([f"x{i}" for i in range(10)] + ["subject", "grade", "answer"]) + "\n")
        while fh.tell() < target:
            n = 50_000
            nums = rng.normal(size=(n, 10)).round(4)
            subj = cats[rng.integers(0, len(cats), n)]
            grade = rng.integers(1, 6, n)
            answer = [" ".join(words[rng.integers(0, len(words), 8)]) for _ in range(n)]
            lines = [
                ",".join(map(str, row)) + f",{s},{g},{a}"
                for row, s, g, a in zip(nums.tolist(), subj, grade, answer, strict=True)
            ]
            fh.write("\n".join(lines) + "\n")
    return path.stat().st_size


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.stop = threading.Event()

    def rss(self) -> int:
        procs = [self.proc, *self.proc.children(recursive=True)]
        total = 0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.02)


def file_chunks(path: Path, size: int = 1024 * 1024) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


def timed_upload(url: str, path: Path, headers: dict[str, str], pid: int) -> tuple[float, int, int, httpx.Response]:
    sampler = RssSampler(pid)
    base = sampler.rss()
    sampler.start()
    start = time.perf_counter()
    resp = httpx.post(url, content=file_chunks(path), headers=headers, timeout=3600)
    elapsed = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    return elapsed, base, sampler.peak, resp


def run_floor(path: Path, work: Path) -> tuple[float, int, int]:
    app_file = work / "floor_app.py"
    app_file.write_text(FLOOR_APP)
    port = free_port()
    env = dict(os.environ, FLOOR_TARGET=str(work / "floor-upload.bin"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "floor_app:app", "--port", str(port), "--log-level", "warning"],
        cwd=work,
        env=env,
    )
    try:
        for _ in range(200):
            try:
                httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        elapsed, base, peak, resp = timed_upload(
            f"http://127.0.0.1:{port}/upload", path, {"content-type": "application/octet-stream"}, proc.pid
        )
        resp.raise_for_status()
        return elapsed, base, peak
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aimaas-bench-upload-"))
    try:
        csv_path = work / "big.csv"
        t0 = time.perf_counter()
        size = generate_csv(csv_path, args.size_mb)
        print(f"generated {size / 1e6:,.0f} MB CSV in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

        floor = run_floor(csv_path, work)
        server = start_server(work / "home", extra_env={"AIMAAS_MAX_UPLOAD_BYTES": str(size * 2)})
        try:
            headers = {"Authorization": f"Bearer {server.admin_key}", "content-type": "application/octet-stream"}
            elapsed, base, peak, resp = timed_upload(
                f"{server.url}/api/v1/datasets/bench/versions?filename=big.csv", csv_path, headers, server.process.pid
            )
            if resp.status_code != 201:
                raise SystemExit(f"upload failed: {resp.status_code} {resp.text}")
            rows = resp.json()["num_rows"]
            t1 = time.perf_counter()
            stats = httpx.get(f"{server.url}/api/v1/datasets/bench/versions/1/stats", headers=headers, timeout=600)
            stats.raise_for_status()
            stats_ms = (time.perf_counter() - t1) * 1000
            exact = stats.json()["exact"]
        finally:
            stop_server(server)

        mb = size / 1e6
        print(
            f"\nUpload of a {mb:,.0f} MB CSV ({rows:,} rows, 13 columns) — "
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}\n"
        )
        print("| system | what the server does | seconds | MB/s | RSS before MB | peak RSS MB | RSS growth MB |")
        print("|---|---|---:|---:|---:|---:|---:|")
        f_el, f_base, f_peak = floor
        print(
            f"| FastAPI floor | stream body to a file | {f_el:.1f} | {mb / f_el:,.0f} | {f_base / 1e6:.0f} | "
            f"{f_peak / 1e6:.0f} | {(f_peak - f_base) / 1e6:.0f} |"
        )
        print(
            f"| aimaas | stream + sha256, validate, schema + stats, store | {elapsed:.1f} | {mb / elapsed:,.0f} | "
            f"{base / 1e6:.0f} | {peak / 1e6:.0f} | {(peak - base) / 1e6:.0f} |"
        )
        print(f"\nStats of the uploaded version served in {stats_ms:.0f} ms (computed at upload; exact={exact}).")
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
