"""``aimaas deploy``, ``endpoints …`` and ``predict`` against a small fake HTTP server speaking the REST contract:
argument parsing (``--idle-timeout 5m``), the requests sent, what is printed and written, early errors."""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from aimaas.cli.endpoints import parse_duration
from aimaas.cli.main import app
from aimaas.errors import InvalidInput

runner = CliRunner()
Answer = tuple[int, Any]


def endpoint(state: str = "ready", **changes: Any) -> dict[str, Any]:
    replicas = [{"id": "r1", "version": 3, "state": "ready", "served": 5}] if state == "ready" else []
    return {
        "name": "iris",
        "model": "iris@prod",
        "task": "classification",
        "min_replicas": 1,
        "max_replicas": 4,
        "max_batch_size": 64,
        "max_wait_ms": 5.0,
        "idle_timeout_s": 300.0,
        "target_ongoing_requests": 8,
        "status": {"state": state, "version": 3, "replicas": replicas},
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
    } | changes


SIGNATURE = {
    "input_kind": "columns",
    "inputs": [
        {"name": "sepal_length", "type": "float", "role": "numeric", "dtype": "float32"},
        {"name": "petals", "type": "integer", "role": "numeric", "dtype": "int64"},
        {"name": "colour", "type": "string", "role": "categorical", "dtype": "string"},
    ],
}
VERSION = {"model": "iris", "version": 3, "ref": "iris/3", "status": "ready", "task": "classification",
           "format": "onnx", "sha256": "0" * 64, "size_bytes": 1, "signature": SIGNATURE,
           "created_at": "2024-01-01T00:00:00Z"}


def not_found(what: str) -> Answer:
    return 404, {"error": {"message": f"{what} not found", "type": "not_found_error", "code": "not_found",
                           "param": None}}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class FakeServer:
    """Answers every request with ``answer(request)`` and keeps the requests, in order."""

    url: str
    answer: Callable[[Request], Answer]
    requests: list[Request] = field(default_factory=list)

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests]

    def cli(self, *args: str, input: str | None = None) -> Any:
        return runner.invoke(app, ["--url", self.url, "--api-key", "secret-key", *args], input=input)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer("", lambda request: (500, {}))

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            parts = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            request = Request(self.command, parts.path, parse_qs(parts.query), json.loads(raw) if raw else None)
            fake.requests.append(request)
            status, payload = fake.answer(request)
            data = b"" if status == 204 else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _handle

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield fake
    httpd.shutdown()
    httpd.server_close()


# -- durations ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("5m", 300), (" 1h30m ", 5400), ("1.5h", 5400), ("2d", 172800), ("0.5m", 30)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "use seconds"), ("5 min", "use seconds"), ("-5", "use seconds"), ("1h30", "a unit to every number"),
     ("30m1h", "largest first"), ("0s", "more than 0"), ("8d", "at most 7 days")],
)
def test_parse_duration_refuses(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        parse_duration(text)
    assert caught.value.param == "idle_timeout_s" and "--idle-timeout" in caught.value.message


# -- deploy ------------------------------------------------------------------------------------------------
def deploy_answers(*states: str) -> Callable[[Request], Answer]:
    looks = iter(states)

    def answer(request: Request) -> Answer:
        if request.path == "/api/v1/endpoints" and request.method == "POST":
            return 201, endpoint("loading", name=request.body["name"])
        if request.path.startswith("/api/v1/models/"):
            return 200, VERSION
        return 200, endpoint(next(looks))

    return answer


def test_deploy_parses_the_options_waits_and_prints_examples(server: FakeServer) -> None:
    server.answer = deploy_answers("loading", "ready")
    result = server.cli("deploy", "iris@prod", "--name", "iris", "--idle-timeout", "5m", "--min-replicas", "0",
                        "--max-batch-size", "32", "--max-wait-ms", "2.5", "--canary", "iris/4")
    assert result.exit_code == 0, result.output
    assert server.requests[0].body == {"name": "iris", "model": "iris@prod", "min_replicas": 0, "max_batch_size": 32,
                                       "max_wait_ms": 2.5, "idle_timeout_s": 300.0,
                                       "canary": {"model": "iris/4", "weight": 0.1}}
    assert server.calls()[1:] == [("GET", "/api/v1/endpoints/iris"), ("GET", "/api/v1/endpoints/iris"),
                                  ("GET", "/api/v1/models/iris/versions/3")]
    out = result.stdout
    assert "Endpoint iris is ready: ready · iris@prod → version 3 · 1/1 replicas ready" in out
    assert f"curl -s {server.url}/api/v1/endpoints/iris/predict" in out
    assert """{"inputs": [{"sepal_length": 1.0, "petals": 1, "colour": "text"}]}""" in out
    assert "aimaas predict iris --json" in out and 'endpoints.predict("iris"' in out
    assert "$AIMAAS_API_KEY" in out and "secret-key" not in result.output
    assert "loading · iris@prod → version 3 · no replica yet" in result.stderr  # one line per state


def test_deploy_of_an_embedding_model_shows_the_openai_client(server: FakeServer) -> None:
    server.answer = lambda request: (
        (200, VERSION | {"signature": {"input_kind": "text_embedding"}})
        if request.path.startswith("/api/v1/models/")
        else (201, endpoint(name="minilm", model="minilm", task="embedding"))
    )
    result = server.cli("deploy", "minilm", "--name", "minilm")
    assert result.exit_code == 0, result.output
    assert f'OpenAI(base_url="{server.url}/v1", api_key=os.environ["AIMAAS_API_KEY"])' in result.stdout
    assert 'client.embeddings.create(model="minilm", input=["hello world"])' in result.stdout
    assert """--json '[{"text": "hello world"}]'""" in result.stdout


def test_deploy_no_wait_and_json(server: FakeServer) -> None:
    server.answer = deploy_answers()
    result = server.cli("deploy", "iris", "--name", "iris", "--no-wait")
    assert result.exit_code == 0, result.output
    assert "Deploying iris (iris@prod); follow it with `aimaas endpoints show iris`" in result.stdout
    result = server.cli("deploy", "iris", "-n", "iris", "--no-wait", "--json")
    assert json.loads(result.stdout)["status"]["state"] == "loading"
    assert server.calls() == [("POST", "/api/v1/endpoints")] * 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--idle-timeout", "5 minutes"], "invalid --idle-timeout '5 minutes'"),
        (["--timeout", "0"], "invalid --timeout '0'"),
        (["--canary-weight", "0.2"], "--canary-weight needs --canary REF"),
        (["--canary", "iris/x"], "the version after '/' must be a positive integer"),
        (["--idle-timeout", "0.5s"], "invalid idle_timeout_s: Input should be greater than or equal to 1"),
    ],
)
def test_deploy_mistakes_fail_before_any_request(server: FakeServer, args: list[str], message: str) -> None:
    result = server.cli("deploy", "iris", "--name", "iris", *args)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert server.requests == []


def test_deploy_reports_a_failed_endpoint_and_a_timeout(server: FakeServer) -> None:
    failed = {"state": "failed", "reason": "the model file does not load", "replicas": []}
    server.answer = lambda request: (201, endpoint("loading")) if request.method == "POST" else (
        200, endpoint(status=failed))
    result = server.cli("deploy", "iris", "--name", "iris")
    assert result.exit_code == 1
    assert "error: endpoint 'iris' failed: the model file does not load" in result.stderr
    server.answer = lambda request: (201 if request.method == "POST" else 200, endpoint("loading"))
    result = server.cli("deploy", "iris", "--name", "iris", "--timeout", "0.3s")
    assert result.exit_code == 1
    assert "error: endpoint iris is not ready after 0.3s" in result.stderr
    assert "hint: watch it with `aimaas endpoints show iris`" in result.stderr


# -- endpoints list / show / update / delete ---------------------------------------------------------------
def test_list_and_show(server: FakeServer) -> None:
    canary = {"model": "iris/4", "weight": 0.25}
    server.answer = lambda request: (
        (200, {"items": [endpoint(), endpoint("idle", name="blobs", model="blobs", min_replicas=0)]})
        if request.path == "/api/v1/endpoints"
        else (200, endpoint(canary=canary, status={"state": "ready", "version": 3, "canary_version": 4,
                                                   "replicas": [{"id": "r-7", "version": 3, "state": "ready"}]}))
    )
    listed = server.cli("endpoints", "list")
    assert listed.exit_code == 0, listed.output
    assert "iris@prod" in listed.stdout and "blobs" in listed.stdout and "idle" in listed.stdout
    assert [e["name"] for e in json.loads(server.cli("endpoints", "list", "--json").stdout)] == ["iris", "blobs"]
    shown = server.cli("endpoints", "show", "iris")
    assert shown.exit_code == 0, shown.output
    for text in ("iris/4 (25%)", "canary version", "1 to 4 (target 8 requests each)", "up to 64 requests", "r-7"):
        assert text in shown.stdout, text
    assert json.loads(server.cli("endpoints", "show", "iris", "--json").stdout)["canary"] == canary


def test_update_sends_only_the_changes(server: FakeServer) -> None:
    server.answer = lambda request: (200, endpoint(canary={"model": "iris@staging", "weight": 0.1}))
    result = server.cli("endpoints", "update", "iris", "--model", "iris/4", "--max-replicas", "8",
                        "--idle-timeout", "1h")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Updated iris: ready · iris@prod")
    assert server.cli("endpoints", "update", "iris", "--canary-weight", "0.5").exit_code == 0
    assert server.cli("endpoints", "update", "iris", "--no-canary").exit_code == 0
    assert [(r.method, r.body) for r in server.requests] == [
        ("PATCH", {"model": "iris/4", "max_replicas": 8, "idle_timeout_s": 3600.0}),
        ("GET", None),  # the canary's model, to change only its share
        ("PATCH", {"canary": {"model": "iris@staging", "weight": 0.5}}),
        ("PATCH", {"clear_canary": True}),
    ]


def test_update_mistakes(server: FakeServer) -> None:
    server.answer = lambda request: (200, endpoint())
    nothing = server.cli("endpoints", "update", "iris")
    assert nothing.exit_code == 1 and "nothing to change" in nothing.stderr
    both = server.cli("endpoints", "update", "iris", "--canary", "iris/2", "--no-canary")
    assert both.exit_code == 1 and "not both" in both.stderr
    assert server.requests == []
    no_canary = server.cli("endpoints", "update", "iris", "--canary-weight", "0.3")
    assert no_canary.exit_code == 1 and "endpoint iris has no canary; add one with --canary REF" in no_canary.stderr


def test_delete_asks_first(server: FakeServer) -> None:
    server.answer = lambda request: (204, None)
    declined = server.cli("endpoints", "delete", "iris", input="n\n")
    assert declined.exit_code == 1 and server.requests == []
    result = server.cli("endpoints", "delete", "iris", "--yes")
    assert result.exit_code == 0 and "Deleted endpoint iris" in result.stdout
    assert server.calls() == [("DELETE", "/api/v1/endpoints/iris")]


# -- predict -----------------------------------------------------------------------------------------------
def classify(request: Request) -> Answer:
    if request.path != "/api/v1/endpoints/iris/predict":
        return not_found(f"endpoint {request.path.split('/')[4]!r}")
    rows = request.body["inputs"]
    predictions = [
        {"label": "big" if row.get("x", 0) > 2 else "small", "probabilities": {"big": 0.75, "small": 0.25}}
        for row in rows
    ]
    return 200, {"predictions": predictions, "model": "iris", "version": 3, "endpoint": "iris"}


def test_predict_json_rows_prints_a_table(server: FakeServer) -> None:
    server.answer = classify
    result = server.cli("predict", "iris", "--json", '[{"x": 1.5, "colour": "red"}, {"x": 3, "colour": null}]')
    assert result.exit_code == 0, result.output
    assert server.requests[0].body == {"inputs": [{"x": 1.5, "colour": "red"}, {"x": 3, "colour": None}]}
    assert "Predictions of iris/3 (endpoint iris)" in result.stdout
    assert "small" in result.stdout and "big 0.75, small 0.25" in result.stdout
    single = server.cli("predict", "iris", "--json", '{"x": 5}')
    columns = server.cli("predict", "iris", "--json", '{"x": [1, 5]}')
    assert single.exit_code == columns.exit_code == 0
    assert [r.body["inputs"] for r in server.requests[1:]] == [[{"x": 5}], [{"x": 1}, {"x": 5}]]


def test_predict_csv_in_batches_with_output(server: FakeServer, tmp_path: Path) -> None:
    server.answer = classify
    source = tmp_path / "rows.csv"
    source.write_text("x,label,colour\n1.5,a,red\n3,b,\n0.5,c,blue\n")
    target = tmp_path / "out.csv"
    result = server.cli("predict", "iris", "--csv", str(source), "--batch-size", "2", "--output", str(target))
    assert result.exit_code == 0, result.output
    assert [r.body["inputs"] for r in server.requests] == [
        [{"x": 1.5, "label": "a", "colour": "red"}, {"x": 3.0, "label": "b", "colour": None}],
        [{"x": 0.5, "label": "c", "colour": "blue"}],
    ]
    with target.open(newline="") as handle:
        written = list(csv.reader(handle))
    assert written[0] == ["x", "label", "colour", "predicted_label", "probability_big", "probability_small"]
    assert written[1:] == [["1.5", "a", "red", "small", "0.75", "0.25"], ["3.0", "b", "", "big", "0.75", "0.25"],
                           ["0.5", "c", "blue", "small", "0.75", "0.25"]]
    assert f"Wrote 3 predictions to {target}" in result.stderr
    as_json = tmp_path / "out.json"
    missing = server.cli("predict", "iris", "--json", "@" + str(tmp_path / "rows.json"))
    assert missing.exit_code == 1 and "No such file or directory" in missing.stderr
    (tmp_path / "rows.json").write_text('[{"x": 4}]')
    assert server.cli("predict", "iris", "--json", "@" + str(tmp_path / "rows.json"), "-o", str(as_json)).exit_code == 0
    saved = json.loads(as_json.read_text())
    assert saved["version"] == 3 and saved["predictions"][0]["label"] == "big"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give the rows with either --json or --csv"),
        (["--json", "[]", "--csv", __file__], "give the rows with either --json or --csv"),
        (["--json", "[{x: 1}]"], "--json is not valid JSON (Expecting property name enclosed in double quotes"),
        (["--json", "[]"], "give at least one row"),
        (["--json", "[1, 2]"], "row 0 is a int"),
        (["--json", '{"a": [1], "b": [1, 2]}'], "the same number of values"),
    ],
)
def test_predict_mistakes_fail_before_any_request(server: FakeServer, args: list[str], message: str) -> None:
    result = server.cli("predict", "iris", *args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr and server.requests == []


def test_predict_on_an_unknown_endpoint_is_one_error_line(server: FakeServer) -> None:
    server.answer = classify
    result = server.cli("predict", "nope", "--json", '[{"x": 1}]')
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: endpoint 'nope' not found"
