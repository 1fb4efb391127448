#!/usr/bin/env bash
# peers.sh - load-test peer Python model servers on loopback, one at a time.
#
# From the project's shared peer harness (bench/peers/peers.sh); the aimaas peers were added so
# that aimaas is measured in the same run, with the same model, bodies and wrk settings.
#
# Peers (each in its own cached virtual environment; aimaas in the repo's .venv):
#   aimaas         `python -m aimaas serve`, the model imported as ONNX and deployed as an
#                  endpoint (min_replicas 1, batching on); the server's defaults (auth on)
#   aimaas-nobatch the same endpoint with max_batch_size 1
#   mlflow         MLflow `mlflow models serve --env-manager local`
#   bentoml        BentoML 1.4 service, plain sync API
#   bentoml-batch  the same with adaptive batching (@bentoml.api(batchable=True))
#   fastapi        bare FastAPI + uvicorn (uvloop + httptools): the floor
#   fastapi-h11    the same app on uvicorn's pure-Python stack (asyncio + h11)
#   ray            Ray Serve, one replica, Ray's defaults (optional: skipped if it will not install)
#   ray-ongoing64  the same with max_ongoing_requests=64 instead of Ray's default 5
#
# One model for all: scikit-learn LogisticRegression on breast_cancer (30 floats),
# trained once per run (deterministic) and saved in each peer's own format.
# Each server binds 127.0.0.1 only; wrk POSTs a fixed JSON body of 1 or 32 rows
# at each concurrency (warm-up, then a measured run) and every response is
# checked for status 200 and a body byte-identical to a validated answer.
#
# Usage:  ./peers.sh [PEER...]          (default: all peers above; the floor and aimaas first)
# Knobs (environment): DURATION=10 WARMUP=3 CONCURRENCY="1 16 64" BATCHES="1 32"
#   WRK_THREADS=1 WRK_TIMEOUT=10s READY_TIMEOUT=180 PORT_BASE=18100 IDLE_S=2 SETTLE_S=60 SETTLE_PCT=15
#   PROBE_MIN_C=16 (a latency probe connection runs beside wrk from this concurrency on; see bench.py probe)
#   PEER_VENVS (cache of the peers' venvs; default ${XDG_CACHE_HOME:-~/.cache}/aimaas-bench/peer-venvs)
#   PEER_STATE (default: a new mktemp directory) PYTHON=python3
#   PEER_OUT_MD / PEER_OUT_JSON (default: benchmarks/results/serving-peers.md/.json in the repo)
#   REBUILD_VENVS=1 to recreate the virtual environments; VENV_TIMEOUT=900 per install.
#   AIMAAS_PYTHON (default: the repo's .venv/bin/python; needs `pip install -e '.[train]'`)
#   EP_MAX_BATCH_SIZE / EP_MAX_WAIT_MS / EP_MAX_REPLICAS: the aimaas endpoint's settings (default: the server's)
# Writes: the two result files; raw wrk output, server logs and models under $PEER_STATE.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
VENVS=${PEER_VENVS:-${XDG_CACHE_HOME:-$HOME/.cache}/aimaas-bench/peer-venvs}
STATE=${PEER_STATE:-$(mktemp -d "${TMPDIR:-/tmp}/aimaas-serving.XXXXXX")}
mkdir -p "$VENVS" "$STATE"
VENVS=$(cd "$VENVS" && pwd); STATE=$(cd "$STATE" && pwd)   # absolute: servers run elsewhere
mkdir -p "$REPO/benchmarks/results"
OUT_MD=${PEER_OUT_MD:-$REPO/benchmarks/results/serving-peers.md}
OUT_JSON=${PEER_OUT_JSON:-$REPO/benchmarks/results/serving-peers.json}
AIMAAS_PY=${AIMAAS_PYTHON:-$REPO/.venv/bin/python}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
CONCURRENCY=${CONCURRENCY:-"1 16 64"}
BATCHES=${BATCHES:-"1 32"}
WRK_THREADS=${WRK_THREADS:-1}
WRK_TIMEOUT=${WRK_TIMEOUT:-10s}
READY_TIMEOUT=${READY_TIMEOUT:-180}
PORT_BASE=${PORT_BASE:-18100}
PYTHON=${PYTHON:-python3}
VENV_TIMEOUT=${VENV_TIMEOUT:-900}  # seconds allowed for one venv's pip install
IDLE_S=${IDLE_S:-2}            # seconds of idle CPU sampling after readiness
SETTLE_S=${SETTLE_S:-60}       # at most this long waiting for start-up work to finish (see run_peer)
SETTLE_PCT=${SETTLE_PCT:-15}
PROBE_MIN_C=${PROBE_MIN_C:-16}  # from this concurrency on, one more connection times its own requests
CLK_TCK=$(getconf CLK_TCK)
TIMEFORMAT='%U %S'             # bash `time`: user and system CPU seconds of wrk
# The floor and aimaas run first and back to back: on a shared machine the load drifts over a run.
ALL_PEERS="fastapi aimaas mlflow bentoml bentoml-batch fastapi-h11 ray ray-ongoing64 aimaas-nobatch"
if [ $# -gt 0 ]; then PEERS="$*"; else PEERS=${PEERS:-$ALL_PEERS}; fi

# Pinned versions: the newest that resolve from this machine's package index
# (mlflow 3.18.0 and bentoml 1.4.40 are listed but need dependency releases the
# index does not have yet).  Same scikit-learn/numpy everywhere so one pickle
# loads in every environment.
COMMON_REQ="scikit-learn==1.9.1 numpy==2.4.6"
declare -A VENV_REQ=(
  [mlflow]="mlflow==3.17.2 $COMMON_REQ"
  [bentoml]="bentoml==1.4.39 $COMMON_REQ"
  [fastapi]="fastapi==0.165.0 uvicorn[standard]==0.54.0 orjson==3.13.0 $COMMON_REQ"
  [ray]="ray[serve]==2.60.0 $COMMON_REQ"
)
declare -A PEER_VENV=(
  [mlflow]=mlflow [bentoml]=bentoml [bentoml-batch]=bentoml
  [fastapi]=fastapi [fastapi-h11]=fastapi [ray]=ray [ray-ongoing64]=ray
  [aimaas]=aimaas [aimaas-nobatch]=aimaas
)
OPTIONAL_VENVS="ray"
# The Python of a venv: the harness's cached ones, or the repo's for aimaas.
venv_py() { if [ "$1" = aimaas ]; then echo "$AIMAAS_PY"; else echo "$VENVS/$1/bin/python"; fi; }

# Quiet, offline-friendly defaults for every process started here.
export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
export DO_NOT_TRACK=true MLFLOW_DISABLE_TELEMETRY=true BENTOML_DO_NOT_TRACK=true
export RAY_USAGE_STATS_ENABLED=0
export BENTOML_HOME="$STATE/bentoml_home"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "ERROR: $*"; exit 1; }
BASEPY="$VENVS/fastapi/bin/python"   # runs train.py and the bench.py helpers
bench() { "$BASEPY" "$HERE/bench.py" "$@"; }

# ------------------------------------------------------------------ setup
ensure_wrk() {
  command -v wrk >/dev/null 2>&1 && return 0
  log "wrk not found; installing Debian's wrk"
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk) >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
  fi
  command -v wrk >/dev/null 2>&1 || die "could not install wrk"
}

# ensure_venv NAME -> 0 ready, 1 failed (marker file records the requirement set)
ensure_venv() {
  if [ "$1" = aimaas ]; then   # the repo's own environment (make's .venv), never rebuilt here
    "$AIMAAS_PY" -c 'import aimaas, httpx, onnxruntime, skl2onnx, sklearn' 2>/dev/null && return 0
    log "$AIMAAS_PY cannot import aimaas with its [train] extra: run \`make test\` (or pip install -e '.[train]') first"
    return 1
  fi
  local name=$1 dir="$VENVS/$1" req=${VENV_REQ[$1]}
  if [ -z "${REBUILD_VENVS:-}" ] && [ -f "$dir/.peers-ready" ] && [ "$(cat "$dir/.peers-ready")" = "$req" ]; then
    return 0
  fi
  log "creating venv $name: $req"
  rm -rf "$dir"
  mkdir -p "$VENVS"
  local t0=$SECONDS
  # shellcheck disable=SC2086
  if "$PYTHON" -m venv "$dir" && timeout "$VENV_TIMEOUT" "$dir/bin/pip" install -q \
      --disable-pip-version-check $req > "$VENVS/$name.install.log" 2>&1; then
    echo "$req" > "$dir/.peers-ready"
    log "venv $name ready in $((SECONDS - t0)) s"
    return 0
  fi
  log "venv $name FAILED after $((SECONDS - t0)) s (see $VENVS/$name.install.log)"
  tail -n 5 "$VENVS/$name.install.log" || true
  return 1
}

# ------------------------------------------------------------------ processes
SERVER_PID=""
stop_server() {
  local pid=${1:-$SERVER_PID}
  [ -n "$pid" ] || return 0
  local pids alive i p
  pids=$(bench tree "$pid" 2>/dev/null || echo "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 40); do           # up to 20 s for a graceful exit of the whole tree
    alive=""
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
    [ -z "$alive" ] && break
    sleep 0.5
  done
  if [ -n "$alive" ]; then
    log "still running after SIGTERM to $pid:$alive -> SIGTERM each"
    # shellcheck disable=SC2086
    kill -TERM $alive 2>/dev/null || true
    sleep 3
    for p in $alive; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null && log "SIGKILL $p"; done
  fi
  wait "$pid" 2>/dev/null || true
  [ -n "${PORT:-}" ] && port_busy "$PORT" && log "WARNING: port $PORT still answers after stopping $pid"
  [ "$pid" = "$SERVER_PID" ] && SERVER_PID=""
  return 0
}
cleanup() { stop_server; }
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_ready URL [LOG PATTERN]
wait_ready() {
  local url=$1 logf=${2:-} pat=${3:-} t0=$SECONDS
  while [ $((SECONDS - t0)) -lt "$READY_TIMEOUT" ]; do
    kill -0 "$SERVER_PID" 2>/dev/null || return 1
    if [ -z "$pat" ] || grep -q "$pat" "$logf" 2>/dev/null; then
      curl -sf -o /dev/null --max-time 2 "$url" && return 0
    fi
    sleep 0.25
  done
  return 1
}

# ------------------------------------------------------------------ peers
# peer_spec PEER: sets PORT HEALTH PREDICT FORMATS READY_PAT SETUP and the CMD array
peer_spec() {
  local peer=$1 idx=0 p v
  for p in $ALL_PEERS; do idx=$((idx + 1)); [ "$p" = "$peer" ] && break; done
  PORT=$((PORT_BASE + idx))
  v="$VENVS/${PEER_VENV[$peer]}"
  READY_PAT=""
  case $peer in
    mlflow)
      HEALTH=/ping; PREDICT=/invocations; FORMATS="mlflow_inputs mlflow_dataframe_split"
      # mlflow execs `uvicorn` from PATH, so the venv's bin must come first
      CMD=(env "PATH=$v/bin:$PATH" "$v/bin/mlflow" models serve -m "$STATE/models/mlflow"
           --env-manager local -h 127.0.0.1 -p "$PORT")
      SETUP="\`mlflow models serve --env-manager local -h 127.0.0.1\` = MLflow's scoring server: a FastAPI app on uvicorn, 1 worker (default), predict run via asyncio.to_thread, uvicorn access log on, asyncio+h11 (the mlflow install brings no uvloop/httptools). Model saved with mlflow.sklearn.save_model (skops serialization, the 3.x default) with a tensor signature float64 (-1, 30); requests as {\"inputs\": rows} and as {\"dataframe_split\": {\"columns\": names, \"data\": rows}}; reply {\"predictions\": [...]}."
      ;;
    bentoml|bentoml-batch)
      HEALTH=/readyz; PREDICT=/predict; FORMATS="bentoml"
      local cls=Plain; [ "$peer" = bentoml-batch ] && cls=Batched
      CMD=("$v/bin/bentoml" serve "bento_service:$cls" --working-dir "$STATE/app"
           --host 127.0.0.1 --port "$PORT")
      if [ "$cls" = Plain ]; then
        SETUP="\`bentoml serve bento_service:Plain\` (1.4 SDK: @bentoml.service(workers=1), sync @bentoml.api run in a thread pool of threads=1, BentoML's default; default access log, metrics and tracing middleware on). Model in the BentoML model store via bentoml.sklearn.save_model. Request {\"input_data\": rows} (JSON keyed by the API parameter name); reply a bare JSON array of labels."
      else
        SETUP="\`bentoml serve bento_service:Batched\`: as Plain but @bentoml.api(batchable=True, batch_dim=0, max_batch_size=${BENTO_MAX_BATCH_SIZE:-2048} rows, max_latency_ms=${BENTO_MAX_LATENCY_MS:-1000}); each request still carries its own 1 or 32 rows, which the dispatcher merges along dim 0."
      fi
      ;;
    fastapi|fastapi-h11)
      HEALTH=/health; PREDICT=/predict; FORMATS="instances"
      CMD=(env "PEER_MODEL_PATH=$STATE/model/model.joblib" "$v/bin/uvicorn" fastapi_app:app
           --app-dir "$STATE/app" --host 127.0.0.1 --port "$PORT" --workers 1 --no-access-log)
      if [ "$peer" = fastapi ]; then
        SETUP="\`uvicorn fastapi_app:app --workers 1 --no-access-log\` with uvicorn[standard] (uvloop + httptools). One async route: orjson parse, np.asarray, model.predict inline on the event loop, orjson reply; model loaded with joblib. Request {\"instances\": rows}; reply {\"predictions\": [...]}."
      else
        CMD+=(--loop asyncio --http h11)
        SETUP="The same app with \`--loop asyncio --http h11\`: uvicorn's pure-Python stack, which is what the MLflow and BentoML installs run on."
      fi
      ;;
    ray|ray-ongoing64)
      HEALTH=/-/healthz; PREDICT=/predict; FORMATS="instances"; READY_PAT="^READY"
      CMD=(env "PEER_PORT=$PORT" "PEER_MODEL_PATH=$STATE/model/model.joblib" "PEER_RAY_TMP=$STATE/ray"
           "RAY_AUTH_MODE=token" "RAY_AUTH_TOKEN=$RAY_TOKEN" "$v/bin/python" "$STATE/app/ray_app.py")
      if [ "$peer" = ray-ongoing64 ]; then
        CMD=(env PEER_RAY_MAX_ONGOING=64 "${CMD[@]}")
        SETUP="The same Ray Serve app with @serve.deployment(max_ongoing_requests=64) instead of Ray's default 5, so one replica may hold every connection's request."
      else
        SETUP="Ray Serve: private local Ray instance (ray.init, no dashboard), serve.start(http_options host 127.0.0.1), one replica with Ray's default max_ongoing_requests (5), async __call__ taking a starlette Request, model loaded with joblib, no @serve.batch. Request {\"instances\": rows}; reply {\"predictions\": [...]}. Ray's own gRPC ports (GCS, raylet, workers) listen beyond loopback (Ray maps 127.0.0.1 to the node address); token auth stays on with a per-run token passed in the environment."
      fi
      ;;
    aimaas|aimaas-nobatch)
      HEALTH=/healthz; PREDICT=""; FORMATS="aimaas_rows aimaas_columns"   # PREDICT: set by aimaas_deploy
      AIMAAS_HOME_DIR="$STATE/aimaas_home/$peer"
      local unset_aimaas=() name   # the caller's AIMAAS_* settings must not reach the server
      for name in $(compgen -e); do case $name in AIMAAS_*) unset_aimaas+=(-u "$name") ;; esac; done
      CMD=(env "${unset_aimaas[@]}" "AIMAAS_HOME=$AIMAAS_HOME_DIR" "AIMAAS_HOST=127.0.0.1" "AIMAAS_PORT=$PORT"
           "AIMAAS_LOG_LEVEL=warning" "$AIMAAS_PY" -m aimaas serve)
      local batching="batching on (endpoint max_batch_size ${EP_MAX_BATCH_SIZE:-server default}, max_wait_ms ${EP_MAX_WAIT_MS:-server default}, max_replicas ${EP_MAX_REPLICAS:-server default})"
      [ "$peer" = aimaas-nobatch ] && batching="batching off (endpoint max_batch_size 1)"
      SETUP="\`python -m aimaas serve\` (uvicorn, 1 process; SQLite + local artifacts in a fresh AIMAAS_HOME; log level warning) with its defaults: API-key auth (Bearer admin key), the inference service path (quotas/metering as the server has them), $batching. The reference model (same coefficients) exported to ONNX by aimaas' export_pipeline, imported with POST /api/v1/models/{name}/import and deployed with POST /api/v1/endpoints (min_replicas 1); ONNX Runtime on CPU. Requests {\"inputs\": [{column: value}]} (aimaas_rows) or {\"inputs\": {column: [values]}} (aimaas_columns); reply {\"predictions\": [{\"label\", \"probabilities\"}], \"model\", \"version\", \"endpoint\"}."
      ;;
    *) die "unknown peer $peer (known: $ALL_PEERS)" ;;
  esac
}

# aimaas_deploy PEER URL: import the ONNX model and deploy the endpoint; sets PREDICT (0 ok, 1 failed)
aimaas_deploy() {
  local peer=$1 url=$2 t0 out extra=()
  if [ "$peer" = aimaas-nobatch ]; then extra=(--max-batch-size 1)
  else
    [ -n "${EP_MAX_BATCH_SIZE:-}" ] && extra+=(--max-batch-size "$EP_MAX_BATCH_SIZE")
  fi
  [ -n "${EP_MAX_WAIT_MS:-}" ] && extra+=(--max-wait-ms "$EP_MAX_WAIT_MS")
  [ -n "${EP_MAX_REPLICAS:-}" ] && extra+=(--max-replicas "$EP_MAX_REPLICAS")
  t0=$SECONDS
  if ! out=$("$AIMAAS_PY" "$HERE/aimaas_peer.py" deploy "$url" "$AIMAAS_HOME_DIR/admin.key" \
      "$STATE/models/aimaas/model.onnx" breast-cancer "${extra[@]}" 2>> "$STATE/logs/$peer.deploy.log"); then
    tail -n 5 "$STATE/logs/$peer.deploy.log" | sed 's/^/    /'
    return 1
  fi
  PREDICT=$out
  log "$peer: $(tail -n 1 "$STATE/logs/$peer.deploy.log")"
  bench setpeer "$STATE" "$peer" "deploy_s=$((SECONDS - t0))"
}

run_peer() {
  local peer=$1 venv=${PEER_VENV[$1]}
  local logf="$STATE/logs/$peer.log" url t0 startup fmt b c body expect raw pids tk0 tk1 line
  peer_spec "$peer"
  url="http://127.0.0.1:$PORT"
  bench setpeer "$STATE" "$peer" "setup=$SETUP" \
    "packages=$("$(venv_py "$venv")" "$HERE/bench.py" pkgs ${PKGS[$venv]})" \
    "version=$("$(venv_py "$venv")" "$HERE/bench.py" pkgs ${MAIN_PKG[$peer]} | awk '{print $2}')"
  if port_busy "$PORT"; then
    log "$peer: port $PORT already in use; skipping"
    echo "{\"peer\": \"$peer\", \"format\": \"-\", \"batch_rows\": \"-\", \"status\": \"port $PORT busy\"}" >> "$STATE/results.jsonl"
    return 0
  fi
  log "$peer: starting on 127.0.0.1:$PORT"
  t0=$(date +%s.%N)
  ( cd "$STATE/run" && exec setsid "${CMD[@]}" ) > "$logf" 2>&1 < /dev/null &
  SERVER_PID=$!
  if ! wait_ready "$url$HEALTH" "$logf" "$READY_PAT"; then
    log "$peer: not ready within ${READY_TIMEOUT}s (or exited); log tail:"
    tail -n 15 "$logf" | sed 's/^/    /'
    echo "{\"peer\": \"$peer\", \"format\": \"-\", \"batch_rows\": \"-\", \"status\": \"server did not become ready\"}" >> "$STATE/results.jsonl"
    stop_server
    return 0
  fi
  startup=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  # aimaas: every request carries the admin key; the endpoint is deployed before the idle sample
  export BENCH_AUTH_FILE="" WRK_AUTH_FILE=""
  local labels_check=""
  case $peer in
    aimaas*)
      BENCH_AUTH_FILE="$AIMAAS_HOME_DIR/admin.key"; WRK_AUTH_FILE=$BENCH_AUTH_FILE; labels_check=1
      if ! aimaas_deploy "$peer" "$url"; then
        log "$peer: deployment failed (see $STATE/logs/$peer.deploy.log and $logf)"
        echo "{\"peer\": \"$peer\", \"format\": \"-\", \"batch_rows\": \"-\", \"status\": \"deployment failed\"}" >> "$STATE/results.jsonl"
        stop_server
        return 0
      fi
      ;;
  esac
  # Let background start-up work finish before the idle sample and the load (aimaas' job executor preloads
  # its worker modules in a fork server for several seconds): wait until the process tree uses less than
  # SETTLE_PCT % of a CPU over one second, at most SETTLE_S seconds.
  local settle_t0=$SECONDS
  while [ $((SECONDS - settle_t0)) -lt "$SETTLE_S" ]; do
    pids=$(bench tree "$SERVER_PID")
    # shellcheck disable=SC2086
    tk0=$(bench cputicks $pids); sleep 1
    # shellcheck disable=SC2086
    tk1=$(bench cputicks $pids)
    [ $((100 * (tk1 - tk0) / CLK_TCK)) -lt "$SETTLE_PCT" ] && break
  done
  bench setpeer "$STATE" "$peer" "settle_s=$((SECONDS - settle_t0))"
  pids=$(bench tree "$SERVER_PID")
  # shellcheck disable=SC2086
  tk0=$(bench cputicks $pids); sleep "$IDLE_S"
  # shellcheck disable=SC2086
  tk1=$(bench cputicks $pids)
  idle=$(awk -v t=$((tk1 - tk0)) -v hz="$CLK_TCK" -v s="$IDLE_S" 'BEGIN{printf "%.0f", 100*t/hz/s}')
  log "$peer: ready after ${startup}s (pid $SERVER_PID, $(echo $pids | wc -w) processes, idle CPU ${idle}%)"
  bench setpeer "$STATE" "$peer" "startup_s=$startup" "idle_cpu_pct=$idle" "processes=$(echo $pids | wc -w)"

  for fmt in $FORMATS; do
    for b in $BATCHES; do
      body="$STATE/bodies/$peer.$fmt.$b.json"; expect="$STATE/bodies/$peer.$fmt.$b.expect"
      bench body "$fmt" "$STATE/rows/rows$b.json" "$STATE/model/meta.json" "$body"
      if ! line=$(bench check "$url$PREDICT" "$body" "$STATE/rows/expected$b.json" "$fmt" "$expect"); then
        log "$peer [$fmt, $b rows]: $line"
        echo "{\"peer\": \"$peer\", \"format\": \"$fmt\", \"batch_rows\": $b, \"status\": $(printf '%s' "$line" | "$BASEPY" -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}" >> "$STATE/results.jsonl"
        continue
      fi
      log "$peer [$fmt, $b rows]: $line"
      for c in $CONCURRENCY; do
        local thr=$WRK_THREADS; [ "$c" -lt "$thr" ] && thr=$c
        raw="$STATE/raw/$peer.$fmt.b$b.c$c.txt"
        local labels=""; [ -n "$labels_check" ] && labels="$STATE/rows/expected$b.json"
        WRK_BODY_FILE=$body WRK_EXPECT_FILE=$expect WRK_EXPECT_LABELS=$labels \
          wrk -t"$thr" -c"$c" -d"${WARMUP}s" --timeout "$WRK_TIMEOUT" -s "$HERE/post.lua" "$url$PREDICT" \
          > "$raw.warmup" 2>&1 || true
        pids=$(bench tree "$SERVER_PID")
        # shellcheck disable=SC2086
        tk0=$(bench cputicks $pids)
        local probe_pid="" probe_out=""
        if [ "$c" -ge "$PROBE_MIN_C" ]; then   # one more connection that times its own requests
          probe_out="$raw.probe.json"
          bench probe "$url$PREDICT" "$body" "$DURATION" "$probe_out" > /dev/null 2>&1 &
          probe_pid=$!
        fi
        { time WRK_BODY_FILE=$body WRK_EXPECT_FILE=$expect WRK_EXPECT_LABELS=$labels \
            wrk -t"$thr" -c"$c" -d"${DURATION}s" --timeout "$WRK_TIMEOUT" -s "$HERE/post.lua" "$url$PREDICT" \
            > "$raw" 2>&1 || true; } 2> "$raw.time"
        # shellcheck disable=SC2086
        tk1=$(bench cputicks $pids)
        [ -n "$probe_pid" ] && { wait "$probe_pid" || true; }
        line=$(bench record "peer=$peer" "format=$fmt" "batch_rows=$b" "concurrency=$c" "probe=$probe_out" \
                 "cpu_ticks=$((tk1 - tk0))" "wrk_cpu_s=$(awk '{print $1 + $2}' "$raw.time")" < "$raw")
        echo "$line" >> "$STATE/results.jsonl"
        printf '%s' "$line" | "$BASEPY" -c '
import json, sys
r = json.load(sys.stdin)
if r.get("status") != "ok":
    print("    c=%-3s %s" % (r["concurrency"], r["status"]))
else:
    print("    c=%-3s %8.0f req/s %9.0f rows/s  p50 %7.2f ms  p99 %7.2f ms (probe %s)  errors %d  varied %d  cpu server %s%% wrk %s%%" % (
        r["concurrency"], r["req_per_s"], r["rows_per_s"], r["p50_ms"], r["p99_ms"], r.get("probe_p99_ms", "-"),
        r["errors"], r.get("varied", 0), r.get("server_cpu_pct"), r.get("wrk_cpu_pct")))'
      done
    done
  done
  bench setpeer "$STATE" "$peer" "rss_mib=$(bench rss $(bench tree "$SERVER_PID"))"
  case $peer in
    aimaas*) bench setpeer "$STATE" "$peer" "replicas_after=$("$AIMAAS_PY" "$HERE/aimaas_peer.py" replicas "$url" \
               "$AIMAAS_HOME_DIR/admin.key" breast-cancer 2>/dev/null || echo '?')" ;;
  esac
  log "$peer: stopping pid $SERVER_PID"
  stop_server
}

declare -A PKGS=(
  [mlflow]="mlflow scikit-learn numpy pandas fastapi uvicorn uvloop httptools skops"
  [bentoml]="bentoml scikit-learn numpy starlette uvicorn uvloop httptools"
  [fastapi]="fastapi uvicorn uvloop httptools orjson scikit-learn numpy"
  [ray]="ray scikit-learn numpy fastapi uvicorn uvloop httptools"
  [aimaas]="aimaas fastapi uvicorn uvloop httptools onnxruntime skl2onnx scikit-learn numpy"
)
declare -A MAIN_PKG=(
  [mlflow]=mlflow [bentoml]=bentoml [bentoml-batch]=bentoml
  [fastapi]=fastapi [fastapi-h11]=fastapi [ray]=ray [ray-ongoing64]=ray
  [aimaas]=aimaas [aimaas-nobatch]=aimaas
)

# ------------------------------------------------------------------ main
main() {
  local t_start=$SECONDS peer need=" fastapi " v
  for peer in $PEERS; do
    [ -n "${PEER_VENV[$peer]:-}" ] || die "unknown peer $peer (known: $ALL_PEERS)"
    case "$need" in *" ${PEER_VENV[$peer]} "*) ;; *) need="$need${PEER_VENV[$peer]} " ;; esac
  done
  ensure_wrk
  local ok_peers="" failed_venvs=" "
  for v in $need; do
    if ! ensure_venv "$v"; then
      case " $OPTIONAL_VENVS " in
        *" $v "*) failed_venvs="$failed_venvs$v " ;;
        *) die "required venv $v could not be built" ;;
      esac
    fi
  done
  for peer in $PEERS; do
    case "$failed_venvs" in *" ${PEER_VENV[$peer]} "*) log "skipping $peer (venv failed)";; *) ok_peers="$ok_peers $peer";; esac
  done

  log "preparing state in $STATE"
  rm -rf "$STATE/model" "$STATE/rows" "$STATE/models" "$STATE/bentoml_home" "$STATE/bodies" "$STATE/aimaas_home" \
         "$STATE/raw" "$STATE/logs" "$STATE/app" "$STATE/run" "$STATE/ray" \
         "$STATE/results.jsonl" "$STATE/peers.json" "$STATE/env.json" "$STATE/run.json"
  mkdir -p "$STATE"/{bodies,raw,logs,app,run}
  cp "$HERE/fastapi_app.py" "$HERE/bento_service.py" "$HERE/ray_app.py" "$STATE/app/"
  "$BASEPY" "$HERE/train.py" "$STATE"
  bench envinfo "$STATE/env.json"
  case "$ok_peers" in *mlflow*) "$VENVS/mlflow/bin/python" "$HERE/export_mlflow.py" "$STATE" ;; esac
  case "$ok_peers" in *bentoml*) "$VENVS/bentoml/bin/python" "$HERE/export_bentoml.py" "$STATE" ;; esac
  case "$ok_peers" in *aimaas*) "$AIMAAS_PY" "$HERE/aimaas_peer.py" export "$STATE" ;; esac
  RAY_TOKEN=$("$BASEPY" -c 'import secrets; print(secrets.token_hex(32))')
  "$BASEPY" - "$STATE/run.json" <<EOF
import json, sys
json.dump({"peers": "$ok_peers".split(), "batches": [int(x) for x in "$BATCHES".split()],
           "concurrency": [int(x) for x in "$CONCURRENCY".split()], "warmup_s": $WARMUP,
           "duration_s": $DURATION, "wrk_threads": $WRK_THREADS, "wrk_timeout": "$WRK_TIMEOUT"},
          open(sys.argv[1], "w"))
EOF

  for peer in $ok_peers; do
    run_peer "$peer"
  done
  bench report "$STATE" "$OUT_MD" "$OUT_JSON"
  log "done in $((SECONDS - t_start)) s: $OUT_MD, $OUT_JSON (raw output in $STATE)"
}

main
