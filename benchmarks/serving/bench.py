"""Helpers for peers.sh (standard library only; any Python 3.10+).

From the project's shared peer harness (bench/peers/bench.py); added for the aimaas peers: the aimaas
request formats, the Authorization header (BENCH_AUTH_FILE), the "varied" and status-class counts, the
targets section of the report.

  bench.py body FORMAT ROWS_JSON META_JSON OUT       write a request body
  bench.py check URL BODY EXPECTED_JSON FORMAT OUT   validate one server answer,
                                                     save its exact bytes to OUT
  bench.py tree PID                                  PID and all its descendants
  bench.py cputicks PID...                           summed utime+stime (clock ticks)
  bench.py rss PID...                                summed RSS in MiB
  bench.py probe URL BODY SECONDS OUT                one more closed-loop connection for SECONDS,
                                                     timing each request itself (see cmd_probe)
  bench.py record KEY=VALUE... < wrk_output          one JSON result line (probe=FILE adds the probe's)
  bench.py pkgs NAME...                              "name version, ..." (run with a venv's Python)
  bench.py envinfo OUT                               Python/BLAS facts (run with the model venv)
  bench.py setpeer STATE PEER KEY=VALUE...           merge facts about a peer into peers.json
  bench.py report STATE OUT_MD OUT_JSON              results table + JSON
"""
import datetime
import json
import os
import platform
import subprocess
import sys
import urllib.error
import urllib.request

# request body per documented format; parse = how to get the labels back out
FORMATS = {
    # MLflow scoring server, tensor input (model signature is a float64 (-1, 30) tensor)
    "mlflow_inputs": lambda rows, meta: {"inputs": rows},
    # MLflow scoring server, pandas split orientation
    "mlflow_dataframe_split": lambda rows, meta: {
        "dataframe_split": {"columns": meta["feature_names"], "data": rows}
    },
    # BentoML: JSON object keyed by the API's parameter names
    "bentoml": lambda rows, meta: {"input_data": rows},
    # our own FastAPI / Ray Serve apps (TF-Serving-like)
    "instances": lambda rows, meta: {"instances": rows},
    # aimaas predict: a list of rows keyed by column name ...
    "aimaas_rows": lambda rows, meta: {"inputs": [dict(zip(meta["feature_names"], r, strict=True)) for r in rows]},
    # ... or a dict of columns
    "aimaas_columns": lambda rows, meta: {
        "inputs": {name: [r[i] for r in rows] for i, name in enumerate(meta["feature_names"])}
    },
}


def parse_labels(fmt, obj):
    if fmt.startswith("mlflow"):
        return obj["predictions"]
    if fmt == "bentoml":
        return obj
    if fmt.startswith("aimaas"):
        return [p["label"] for p in obj["predictions"]]
    return obj["predictions"]


def cmd_body(fmt, rows_path, meta_path, out):
    with open(rows_path) as f:
        rows = json.load(f)
    with open(meta_path) as f:
        meta = json.load(f)
    with open(out, "w") as f:
        json.dump(FORMATS[fmt](rows, meta), f)


def auth_headers():
    """{"Authorization": "Bearer KEY"} when BENCH_AUTH_FILE names a key file (aimaas), else {}."""
    path = os.environ.get("BENCH_AUTH_FILE")
    if not path:
        return {}
    with open(path) as f:
        return {"Authorization": "Bearer " + f.read().strip()}


def post(url, body, timeout=30):
    headers = {"Content-Type": "application/json", **auth_headers()}
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def cmd_check(url, body_path, expected_path, fmt, out):
    with open(body_path, "rb") as f:
        body = f.read()
    with open(expected_path) as f:
        expected = json.load(f)
    answers = []
    for _ in range(3):
        status, resp = post(url, body)
        if status != 200:
            print(f"check FAILED: HTTP {status}: {resp[:300]!r}")
            return 1
        answers.append(resp)
    if len(set(answers)) != 1:
        print("check FAILED: response body differs between identical requests")
        return 1
    try:
        labels = parse_labels(fmt, json.loads(answers[0]))
        labels = [int(v) for v in labels]
    except Exception as e:  # noqa: BLE001
        print(f"check FAILED: cannot parse predictions ({e}): {answers[0][:300]!r}")
        return 1
    if labels != expected:
        print(f"check FAILED: predictions {labels} != expected {expected}")
        return 1
    with open(out, "wb") as f:
        f.write(answers[0])
    print(f"check ok: {len(labels)} predictions correct; response {answers[0][:80]!r}")
    return 0


def cmd_probe(url, body_path, seconds, out):
    """One closed-loop keep-alive connection beside wrk's, timing every request with a monotonic clock.

    wrk's own latency percentiles are not trustworthy when a server stalls: on a test server that blocks its
    event loop for 300 ms once every 500 requests, wrk 4.1.0 (1 connection) reported p75 85 ms and p99 292 ms
    where a client timing each request measured p99 4.9 ms, and its mean latency times its request count
    exceeded the run's wall time several times over. A closed-loop connection among the benchmark's is an
    unbiased sample of the per-request latency, so its percentiles are reported beside wrk's.
    """
    import http.client
    import time
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    with open(body_path, "rb") as f:
        body = f.read()
    headers = {"Content-Type": "application/json", **auth_headers()}
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    lat, bad = [], 0
    end = time.perf_counter() + float(seconds)
    while time.perf_counter() < end:
        t = time.perf_counter()
        try:
            conn.request("POST", parts.path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            ok = resp.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        lat.append(time.perf_counter() - t)
        bad += not ok
    lat.sort()

    def pct(p):
        return round(1000 * lat[min(len(lat) - 1, int(p / 100 * len(lat)))], 3) if lat else None

    with open(out, "w") as f:
        json.dump({"n": len(lat), "errors": bad, "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99),
                   "max_ms": round(1000 * lat[-1], 3) if lat else None}, f)
    return 0


def _children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(pid):
    kids = _children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cmd_cputicks(pids):
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    print(total)


def cmd_rss(pids):
    total_kb = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total_kb += int(line.split()[1])
        except OSError:
            continue
    print(f"{total_kb / 1024:.0f}")


def cmd_record(kv):
    rec = {}
    for item in kv:
        k, _, v = item.partition("=")
        try:
            rec[k] = int(v)
        except ValueError:
            try:
                rec[k] = float(v)
            except ValueError:
                rec[k] = v
    wrk = None
    for line in sys.stdin:
        if line.startswith("WRKJSON "):
            wrk = json.loads(line[len("WRKJSON ") :])
    if wrk is None:
        rec["status"] = "no wrk result"
    else:
        dur = wrk["duration_us"] / 1e6
        sock = wrk["err_connect"] + wrk["err_read"] + wrk["err_write"] + wrk["err_timeout"]
        rec.update(
            status="ok",
            requests=wrk["requests"],
            duration_s=round(dur, 3),
            req_per_s=round(wrk["requests"] / dur, 1),
            ok_per_s=round(wrk["ok"] / dur, 1),
            varied=wrk.get("varied", 0),
            non2xx=wrk.get("s3xx", 0) + wrk.get("s4xx", 0) + wrk.get("s5xx", 0),
            rows_per_s=round(wrk["ok"] * rec.get("batch_rows", 1) / dur, 1),
            p50_ms=round(wrk["p50_us"] / 1000, 3),
            p90_ms=round(wrk["p90_us"] / 1000, 3),
            p99_ms=round(wrk["p99_us"] / 1000, 3),
            mean_ms=round(wrk["lat_mean_us"] / 1000, 3),
            max_ms=round(wrk["lat_max_us"] / 1000, 3),
            ok=wrk["ok"],
            non200=wrk["non200"],
            mismatch=wrk["mismatch"],
            socket_errors=sock,
            errors=wrk["non200"] + wrk["mismatch"] + sock,
            wrk=wrk,
        )
        ticks = rec.pop("cpu_ticks", None)
        if isinstance(ticks, int) and dur > 0:
            rec["server_cpu_pct"] = round(100.0 * ticks / os.sysconf("SC_CLK_TCK") / dur)
        probe = rec.pop("probe", None)
        if isinstance(probe, str) and probe and os.path.exists(probe):
            with open(probe) as f:
                p = json.load(f)
            rec.update(probe_n=p["n"], probe_errors=p["errors"], probe_p50_ms=p["p50_ms"],
                       probe_p99_ms=p["p99_ms"], probe_max_ms=p["max_ms"])
        # Check of wrk's own latency numbers: in a closed loop, mean latency x requests is at most
        # connections x duration (1.0 when every connection always waits); well above 1 means they are biased.
        if dur > 0:
            conc = rec.get("concurrency") or 1
            rec["wrk_latency_check"] = round(wrk["lat_mean_us"] * wrk["requests"] / 1e6 / (conc * dur), 2)
        wrk_cpu = rec.pop("wrk_cpu_s", None)
        if isinstance(wrk_cpu, (int, float)) and dur > 0:
            rec["wrk_cpu_pct"] = round(100.0 * wrk_cpu / dur)
    print(json.dumps(rec))


# ---------------------------------------------------------------- report

def _sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:  # noqa: BLE001
        return ""


def system_info(state):
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        mem_gib = f"{kb / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    os_name = ""
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    info = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),  # noqa: UP017
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory": mem_gib,
        "os": os_name,
        "kernel": platform.release(),
        "wrk": _sh("wrk --version 2>&1 | head -1 | cut -d' ' -f1-2"),
    }
    p = os.path.join(state, "env.json")
    if os.path.exists(p):
        with open(p) as f:
            info.update(json.load(f))
    return info


PEER_LABEL = {
    "mlflow": ("MLflow", "`mlflow models serve`"),
    "bentoml": ("BentoML", "no batching"),
    "bentoml-batch": ("BentoML", "adaptive batching"),
    "fastapi": ("FastAPI+uvicorn (floor)", "uvloop+httptools"),
    "fastapi-h11": ("FastAPI+uvicorn (floor)", "asyncio+h11"),
    "ray": ("Ray Serve", "1 replica, defaults"),
    "ray-ongoing64": ("Ray Serve", "1 replica, max_ongoing_requests=64"),
    "aimaas": ("aimaas", "server defaults, batching on"),
    "aimaas-nobatch": ("aimaas", "server defaults, max_batch_size 1"),
}


WRK_NOTE = (
    "wrk's latency percentiles are biased upward when a server stalls. Check outside the harness: a "
    "FastAPI test server that blocks its event loop for 300 ms once every 500 requests, 1 connection, 4 s: "
    "wrk 4.1.0 reported mean 52.8 ms, p50 0.18 ms, p75 85 ms, p90 215 ms, p99 292 ms for 4499 requests "
    "(mean x requests = 237 s of latency in a 4 s run on one connection, which is impossible); a Python client "
    "timing each request on the same server measured mean 0.93 ms, p90 0.43 ms, p99 4.9 ms, max 304 ms. "
    "Hence the probe columns and the lat. check column; the p99 target uses wrk's p99 where the check is at "
    "most 1.2 and the probe's otherwise (the probe, a Python client on the same busy CPUs, adds its own "
    "overhead: it reads a few ms high against a fast server)."
)

AIMAAS_NOTES = [
    "aimaas runs as `python -m aimaas serve` (the same command as `aimaas serve`; SQLite metadata and local "
    "artifacts in a fresh AIMAAS_HOME) with its defaults: every request is authenticated with the admin key "
    "(`Authorization: Bearer`, sent by the wrk script), goes through the inference service (tenant check; "
    "quotas and usage metering when the server has them on that path) and, for the `aimaas` row, through the "
    "endpoint's batch queue. The model is the same fitted "
    "LogisticRegression (coefficients copied bit for bit from the pickle every other peer loads) behind a "
    "pass-through ColumnTransformer, exported to ONNX by aimaas' own `export_pipeline` (30 float32 inputs, "
    "`aimaas.*` metadata), imported with `POST /api/v1/models/{name}/import` and deployed with "
    "`POST /api/v1/endpoints` (min_replicas 1); ONNX Runtime computes in float32 where scikit-learn uses "
    "float64, and its labels agree with the pickled model's on the benchmark rows (checked before the run).",
    "aimaas answers `{\"predictions\": [{\"label\", \"probabilities\"}], \"model\", \"version\", "
    "\"endpoint\"}`, so its bodies are larger than the peers' bare label lists. `aimaas_rows` sends rows as "
    "`{\"inputs\": [{\"mean radius\": ..., ...}]}` (every row repeats the 30 column names: ~1.1 kB per "
    "row against ~0.6 kB for a bare list of floats); `aimaas_columns` sends `{\"inputs\": {column: "
    "[values]}}`.",
    "varied = 200 answers whose bytes differ from the validated answer but whose labels are exactly the "
    "expected ones (counted as ok). ONNX Runtime's linear classifier takes a different kernel for a batch of "
    "one row than for several, so a request's probabilities differ in the 6th decimal depending on whether "
    "the batch queue ran it alone or with others; labels never differ.",
]

NOTES = [
    "Each server runs one worker process (the default of `mlflow models serve`, BentoML "
    "`@bentoml.service` and uvicorn) on a 2-CPU machine, and wrk runs on the same CPUs, so a single "
    "Python process tops out near 100 % server CPU; Ray Serve spreads over several processes.",
    "MLflow: `mlflow models serve` starts `uvicorn` by name (`exec uvicorn ... "
    "mlflow.pyfunc.scoring_server.app:app`), so the venv's bin directory must be on PATH "
    "(activate the venv); invoking the venv's mlflow binary alone fails with `uvicorn: not found`.",
    "MLflow `dataframe_split` costs ~6-7 ms of server time per request whatever the row count: "
    "the scoring server builds a pandas DataFrame and casts it column by column to the schema "
    "(`cast_df_types_according_to_schema`); a column-based signature was slower still in an "
    "in-process check (~10 ms/call). The tensor `inputs` format skips that.",
    "BentoML: the JSON body is an object keyed by the API method's parameter names "
    "(`{\"input_data\": [[...]]}`); a numpy return value comes back as a bare JSON array. With "
    "adaptive batching every request still carries its own rows; the dispatcher merges requests "
    "along dim 0, and with a single client it waits for company, which shows as higher latency at "
    "concurrency 1.",
    "BentoML's p99 at concurrency 1 (100-400 ms against a p50 near 2 ms) comes from stalls of "
    "100-200 ms about every 1.5 s that BentoML's own access log also times server-side. In a "
    "one-off check outside this harness (1 row, concurrency 1, same service) with Python's cyclic "
    "garbage collector disabled in the server processes, p99 fell from ~160 ms to ~2.6 ms: the "
    "stalls are cyclic garbage-collector passes.",
    "BentoML adaptive batching rejects a request it cannot dispatch within max_latency_ms with "
    "HTTP 503 (`ServiceUnavailable: process is overloaded`). The harness sets max_latency_ms=1000 "
    "(BentoML's default is 60000; override with BENTO_MAX_LATENCY_MS), so errors in the "
    "adaptive-batching rows under heavy load are those 503s: queueing at 64 connections plus the "
    "garbage-collection stalls (previous note) pushed some requests past 1 s.",
    "Ray Serve: `ray.init(_node_ip_address='127.0.0.1')` is mapped back to the node's own address "
    "and Ray's gRPC servers (GCS, raylet, workers) listen beyond loopback; only the Serve HTTP "
    "proxy, the endpoint under test, is bound to 127.0.0.1. The harness keeps Ray's token auth on "
    "with a random per-run RAY_AUTH_TOKEN in the environment (so nothing is written to the home "
    "directory). Ray's background processes use CPU even when idle (idle CPU under Peer setups).",
    "Run-to-run spread on this shared VM is large: two full runs 15 minutes apart while the "
    "harness was written differed per cell by -30 % to +47 % in req/s (most cells moved the same "
    "way for every peer). Compare peers within one run and repeat runs before reading small "
    "differences.",
    "Connection-reset tracebacks (`ClientDisconnect`) in server logs come from wrk closing its "
    "connections at the end of each run; they are not counted as errors.",
]


def _cell(results, peer, fmts, batch=1, conc=64):
    """The best ok result of ``peer`` among request formats ``fmts`` at (batch, conc), or None."""
    found = [r for r in results if r.get("peer") == peer and r.get("format") in fmts and r.get("status") == "ok"
             and r.get("batch_rows") == batch and r.get("concurrency") == conc]
    return max(found, key=lambda r: r["ok_per_s"]) if found else None


def target_rows(results):
    """The issue's tabular targets, measured in this run (empty without an aimaas result at 1 row x 64)."""
    ours = _cell(results, "aimaas", ("aimaas_rows",))
    if ours is None:
        return []
    rows = []

    def ratio(label, want, peers, fmts):
        best = [c for c in (_cell(results, p, fmts) for p in peers) if c is not None]
        if not best:
            rows.append({"target": label, "measured": "peer not measured", "met": "-"})
            return
        ref = max(best, key=lambda r: r["ok_per_s"])
        x = ours["ok_per_s"] / ref["ok_per_s"] if ref["ok_per_s"] else float("inf")
        rows.append({"target": label, "ratio": round(x, 2),
                     "measured": f"{x:.2f}x ({ours['ok_per_s']:.0f} vs {ref['ok_per_s']:.0f} correct req/s, "
                                 f"{PEER_LABEL.get(ref['peer'], (ref['peer'],))[0]} `{ref['format']}`"
                                 + (f" {PEER_LABEL[ref['peer']][1]}" if ref["peer"] in PEER_LABEL else "") + ")",
                     "met": "yes" if x >= want else "no"})

    ratio(">= 0.9x the floor's req/s", 0.9, ["fastapi"], ("instances",))
    ratio(">= 3x MLflow", 3.0, ["mlflow"], ("mlflow_inputs", "mlflow_dataframe_split"))
    ratio(">= 3x BentoML (its better variant)", 3.0, ["bentoml", "bentoml-batch"], ("bentoml",))
    # wrk's p99 when its latency figures pass the closed-loop check, else the probe connection's
    probe = ours.get("probe_p99_ms")
    consistent = ours.get("wrk_latency_check", 1.0) <= 1.2 or probe is None
    p99 = ours["p99_ms"] if consistent else probe
    shown = (f"{p99:.1f} ms ({'wrk' if consistent else 'probe connection; wrk lat. check '}"
             f"{'' if consistent else ours['wrk_latency_check']}); "
             + (f"probe {probe:.1f} ms over {ours['probe_n']} requests" if probe is not None else "no probe")
             + ("" if consistent else f"; wrk says {ours['p99_ms']:.1f} ms"))
    rows.append({"target": "p99 <= 50 ms", "measured": shown, "met": "yes" if p99 <= 50 else "no"})
    rows.append({"target": "no errors", "measured": f"{ours['errors']} errors, {ours['varied']} varied",
                 "met": "yes" if ours["errors"] == 0 else "no"})
    return rows


def _num(v):
    return "-" if v is None else f"{v:.2f}"


def _fmt_list(v):
    return ", ".join(str(x) for x in v) if isinstance(v, list) else str(v)


def cmd_report(state, out_md, out_json):
    def load(name, default):
        p = os.path.join(state, name)
        if os.path.exists(p):
            with open(p) as f:
                return json.load(f)
        return default

    results = []
    path = os.path.join(state, "results.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            results = [json.loads(line) for line in f if line.strip()]
    peers = load("peers.json", {})
    meta = load(os.path.join("model", "meta.json"), {})
    meta.pop("feature_names", None)
    run = load("run.json", {})
    sysinfo = system_info(state)

    notes = NOTES + [WRK_NOTE] + (AIMAAS_NOTES if any(k.startswith("aimaas") for k in peers) else [])
    targets = target_rows(results)
    doc = {"system": sysinfo, "run": run, "model": meta, "peers": peers, "results": results, "targets": targets,
           "notes": notes}
    with open(out_json, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")

    L = ["# Serving: aimaas beside the floor and the peers", ""]
    L.append(
        f"Generated by `peers.sh` on {sysinfo['date_utc']} UTC. Machine: {sysinfo['cpu']}, "
        f"{sysinfo['cpus']} CPUs, {sysinfo['memory']}, {sysinfo['os']}, kernel {sysinfo['kernel']}; "
        f"Python {sysinfo.get('python', '?')}; load generator {sysinfo['wrk']}; "
        f"BLAS: {sysinfo.get('blas', '?')}, thread variables: {sysinfo.get('blas_env', '?')}."
    )
    L.append("")
    if meta:
        ip = meta.get("inprocess_predict_us", {})
        L.append(
            f"Model: scikit-learn {meta.get('scikit_learn')} `{meta.get('model')}` on breast_cancer "
            f"({meta.get('n_samples')} x {meta.get('n_features')} floats), held-out accuracy "
            f"{meta.get('test_accuracy')}. In-process `model.predict` (median): "
            + ", ".join(f"{v} us for {k} row{'s' if k != '1' else ''}" for k, v in ip.items())
            + "."
        )
        L.append("")
    if run:
        L.append(
            f"Load: wrk with {run.get('wrk_threads')} thread, POST of a fixed JSON body of "
            f"{_fmt_list(run.get('batches'))} rows, at concurrency (connections) "
            f"{_fmt_list(run.get('concurrency'))}; each cell is {run.get('warmup_s')} s of warm-up "
            f"(discarded) then {run.get('duration_s')} s measured; wrk timeout {run.get('wrk_timeout')}. "
            f"Servers bind 127.0.0.1 and run one at a time; wrk shares the same CPUs (no pinning). "
            f"Every response is checked by the wrk script: status 200 and a body byte-identical to a "
            f"reply whose predictions were first validated against the model's own predictions."
        )
        L.append("")
    if targets:
        L.append("## Targets (tabular predict, 1 row, 64 connections)")
        L.append("")
        L.append("| target | measured | met |")
        L.append("|---|---|---|")
        for t in targets:
            L.append(f"| {t['target']} | {t['measured']} | {t['met']} |")
        L.append("")
        L.append("## All results")
        L.append("")
    L.append("| system | version | variant | request format | batch rows | concurrency | req/s | rows/s "
             "| p50 ms | p99 ms | probe p50 ms | probe p99 ms | wrk lat. check | errors | varied | server CPU % "
             "| wrk CPU % |")
    L.append("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        name, variant = PEER_LABEL.get(r.get("peer"), (r.get("peer"), ""))
        ver = peers.get(r.get("peer"), {}).get("version", "")
        if r.get("status") != "ok":
            L.append(
                f"| {name} | {ver} | {variant} | `{r.get('format')}` | {r.get('batch_rows')} "
                f"| {r.get('concurrency', '-')} | - | - | - | - | - | - | - | FAILED: {r.get('status')} | - | - | - |"
            )
            continue
        L.append(
            f"| {name} | {ver} | {variant} | `{r.get('format')}` | {r['batch_rows']} | {r['concurrency']} "
            f"| {r['req_per_s']:.0f} | {r['rows_per_s']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {_num(r.get('probe_p50_ms'))} | {_num(r.get('probe_p99_ms'))} | {r.get('wrk_latency_check', '')} "
            f"| {r['errors']} | {r.get('varied', 0)} | {r.get('server_cpu_pct', '')} | {r.get('wrk_cpu_pct', '')} |"
        )
    L.append("")
    L.append(
        "req/s counts all completed responses; rows/s counts correct responses x batch rows. "
        "errors = non-200 + wrong body + socket errors/timeouts (wrk's counts). p50/p99 are wrk's "
        "per-request percentiles over the measured window (closed loop: each connection waits for "
        "its reply). probe p50/p99: from concurrency 16 on, one more keep-alive connection (Python, "
        "closed loop) times each of its own requests with a monotonic clock; it is a sample of the same "
        "per-request latency, taken independently of wrk. wrk lat. check = wrk's mean latency x its "
        "request count / (connections x seconds): a closed loop cannot exceed ~1.0, so values well above "
        "1 mark cells where wrk's latency figures are biased upward (seen with servers that stall; see "
        "the notes). server CPU % = CPU time of the server's whole process tree over the measured "
        "window; wrk CPU % = the load generator's own; 200 % = both CPUs."
    )
    L.append("")
    L.append("## Peer setups")
    L.append("")
    for key, p in peers.items():
        name, variant = PEER_LABEL.get(key, (key, ""))
        L.append(
            f"- **{name}, {variant}**: {p.get('setup', '')} Packages: {p.get('packages', '')}. "
            f"Start to ready: {p.get('startup_s', '?')} s (then {p.get('settle_s', '?')} s until its CPU use settled); "
            f"process tree of {p.get('processes', '?')}; "
            f"idle CPU {p.get('idle_cpu_pct', '?')} %; RSS after the load {p.get('rss_mib', '?')} MiB."
            + (f" Deployment (import + endpoint ready): {p['deploy_s']} s; endpoint replicas after the load "
               f"(autoscaling): {p.get('replicas_after', '?')}." if "deploy_s" in p else "")
        )
    L.append("")
    L.append("## Notes")
    L.append("")
    for n in notes:
        L.append(f"- {n}")
    L.append("")
    with open(out_md, "w") as f:
        f.write("\n".join(L))
    print(f"wrote {len(results)} result rows")


def cmd_pkgs(names):
    import importlib.metadata as md

    out = []
    for n in names:
        try:
            out.append(f"{n} {md.version(n)}")
        except md.PackageNotFoundError:
            out.append(f"{n} (absent)")
    print(", ".join(out))


def cmd_envinfo(out):
    info = {"python": platform.python_version()}
    try:
        import numpy
        from threadpoolctl import threadpool_info

        libs = [
            f"{d.get('internal_api')} {d.get('version')} "
            f"({d.get('num_threads')} threads, {d.get('threading_layer', '?')})"
            for d in threadpool_info()
            if d.get("user_api") == "blas"
        ]
        info["blas"] = "; ".join(libs) or "unknown"
        info["numpy"] = numpy.__version__
        info["blas_env"] = {k: v for k, v in os.environ.items() if k.endswith("_NUM_THREADS")} or "none set"
    except Exception as e:  # noqa: BLE001
        info["blas"] = f"unknown ({e})"
    with open(out, "w") as f:
        json.dump(info, f)


def cmd_setpeer(state, peer, kv):
    path = os.path.join(state, "peers.json")
    peers = {}
    if os.path.exists(path):
        with open(path) as f:
            peers = json.load(f)
    d = peers.setdefault(peer, {})
    for item in kv:
        k, _, v = item.partition("=")
        d[k] = v
    with open(path, "w") as f:
        json.dump(peers, f, indent=1)


def main(argv):
    cmd = argv[1]
    if cmd == "body":
        return cmd_body(*argv[2:6])
    if cmd == "check":
        return cmd_check(*argv[2:7])
    if cmd == "tree":
        print(" ".join(str(p) for p in tree(int(argv[2]))))
        return 0
    if cmd == "cputicks":
        return cmd_cputicks([int(p) for p in argv[2:]])
    if cmd == "rss":
        return cmd_rss([int(p) for p in argv[2:]])
    if cmd == "probe":
        return cmd_probe(*argv[2:6])
    if cmd == "record":
        return cmd_record(argv[2:])
    if cmd == "pkgs":
        return cmd_pkgs(argv[2:])
    if cmd == "envinfo":
        return cmd_envinfo(argv[2])
    if cmd == "setpeer":
        return cmd_setpeer(argv[2], argv[3], argv[4:])
    if cmd == "report":
        return cmd_report(*argv[2:5])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv) or 0)
