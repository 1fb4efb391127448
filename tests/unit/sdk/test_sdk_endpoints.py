"""The SDK's endpoint calls over a fake network: paths, bodies, checks made before sending, predict inputs
(rows, columns, DataFrames), wait_ready and the OpenAI client."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from aimaas.errors import InvalidInput, NotFound, ServiceUnavailable
from aimaas.schemas import CanarySpec
from aimaas.sdk import AsyncClient, Client
from aimaas.sdk._inputs import predict_inputs

URL = "http://aimaas.test"


def endpoint(state: str = "ready", **changes: Any) -> dict[str, Any]:
    replicas = [{"id": "r1", "version": 3, "state": "ready"}] if state == "ready" else []
    body = {
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
    }
    return body | changes


PREDICTION = {
    "predictions": [{"label": "setosa", "probabilities": {"setosa": 0.9, "versicolor": 0.1}}],
    "model": "iris",
    "version": 3,
    "endpoint": "iris",
}


def recorder(answer: Callable[[httpx.Request], httpx.Response]) -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return answer(request)

    return seen, httpx.MockTransport(handler)


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)


# -- create, update, list, delete --------------------------------------------------------------------------
def test_create_sends_only_the_given_settings_and_deploy_is_the_same_call() -> None:
    seen, transport = recorder(lambda request: httpx.Response(201, json=endpoint("loading")))
    with Client(URL, api_key="k", transport=transport) as client:
        created = client.endpoints.create("iris", "iris@prod", min_replicas=0, idle_timeout_s=300, max_wait_ms=2.5)
        client.deploy("iris", "iris@prod", min_replicas=0, idle_timeout_s=300, max_wait_ms=2.5)
        client.deploy("iris2", "iris/3", canary=("iris/4", 0.1), description="two versions")
        client.deploy("iris3", "iris", canary={"model": "iris@staging", "weight": 0.5})
        client.deploy("iris4", "iris", canary=CanarySpec(model="iris/2", weight=0))
    assert created.status.state == "loading"
    assert [(r.method, r.url.path) for r in seen] == [("POST", "/api/v1/endpoints")] * 5
    assert body(seen[0]) == body(seen[1]) == {
        "name": "iris",
        "model": "iris@prod",
        "min_replicas": 0,
        "idle_timeout_s": 300.0,
        "max_wait_ms": 2.5,
    }
    assert body(seen[2]) == {
        "name": "iris2",
        "model": "iris/3",
        "canary": {"model": "iris/4", "weight": 0.1},
        "description": "two versions",
    }
    assert body(seen[3])["canary"] == {"model": "iris@staging", "weight": 0.5}
    assert body(seen[4])["canary"] == {"model": "iris/2", "weight": 0.0}


@pytest.mark.parametrize(
    ("kwargs", "param", "message"),
    [
        ({"model": "iris/x"}, "model", "positive integer"),
        ({"model": ""}, "model", "a model reference is required"),
        ({"min_replicas": -1}, "min_replicas", "greater than or equal to 0"),
        ({"max_replicas": 0}, "max_replicas", "greater than or equal to 1"),
        ({"max_batch_size": 5000}, "max_batch_size", "less than or equal to 4096"),
        ({"idle_timeout_s": 0.5}, "idle_timeout_s", "greater than or equal to 1"),
        ({"canary": ("iris/4", 2)}, "canary.weight", "less than or equal to 1"),
        ({"canary": ("iris/", 0.1)}, "canary.model", "a version number after '/'"),
        ({"canary": "iris/4"}, "canary", "give the canary as"),
        ({"name": ""}, "name", "at least 1 character"),
    ],
)
def test_create_checks_arguments_before_sending(kwargs: dict[str, Any], param: str, message: str) -> None:
    seen, transport = recorder(lambda request: httpx.Response(201, json=endpoint()))
    arguments: dict[str, Any] = {"name": "iris", "model": "iris"} | kwargs
    with Client(URL, api_key="k", transport=transport) as client, pytest.raises(InvalidInput, match=message) as caught:
        client.endpoints.create(**arguments)
    assert caught.value.param == param
    assert seen == []


def test_update_patches_only_what_changes() -> None:
    seen, transport = recorder(lambda request: httpx.Response(200, json=endpoint()))
    with Client(URL, api_key="k", transport=transport) as client:
        client.endpoints.update("iris", model="iris/4", max_replicas=8)
        client.endpoints.update("iris", canary=("iris@staging", 0.2))
        client.endpoints.update("iris", clear_canary=True)
        client.endpoints.update("my endpoint", description="x")
        with pytest.raises(InvalidInput, match="not both") as caught:
            client.endpoints.update("iris", canary=("iris/2", 0.1), clear_canary=True)
        assert caught.value.param == "canary"
        with pytest.raises(InvalidInput, match="an endpoint name is required") as caught:
            client.endpoints.update(" ", max_replicas=2)
        assert caught.value.param == "name"
    assert [(r.method, r.url.raw_path.decode()) for r in seen] == [
        ("PATCH", "/api/v1/endpoints/iris"),
        ("PATCH", "/api/v1/endpoints/iris"),
        ("PATCH", "/api/v1/endpoints/iris"),
        ("PATCH", "/api/v1/endpoints/my%20endpoint"),
    ]
    assert [body(r) for r in seen] == [
        {"model": "iris/4", "max_replicas": 8},
        {"canary": {"model": "iris@staging", "weight": 0.2}},
        {"clear_canary": True},
        {"description": "x"},
    ]


def test_list_follows_cursors_get_and_delete() -> None:
    pages = {
        None: {"items": [endpoint(name="a")], "next_cursor": "c2"},
        "c2": {"items": [endpoint(name="b"), endpoint("idle", name="c")], "next_cursor": None},
    }

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(204)
        if request.url.path == "/api/v1/endpoints":
            return httpx.Response(200, json=pages[request.url.params.get("cursor")])
        return httpx.Response(404, json={"error": {"message": "endpoint 'nope' not found", "type": "x",
                                                   "code": "not_found", "param": None}})

    seen, transport = recorder(answer)
    with Client(URL, api_key="k", transport=transport) as client:
        assert [e.name for e in client.endpoints.iter_all(page_size=2)] == ["a", "b", "c"]
        assert client.endpoints.list(limit=5).next_cursor == "c2"
        with pytest.raises(NotFound, match="endpoint 'nope' not found"):
            client.endpoints.get("nope")
        assert client.endpoints.delete("a") is None
    assert seen[0].url.params["limit"] == "2" and seen[2].url.params == httpx.QueryParams({"limit": "5"})
    assert (seen[-1].method, seen[-1].url.path) == ("DELETE", "/api/v1/endpoints/a")


# -- predict -----------------------------------------------------------------------------------------------
def test_predict_posts_rows_and_reads_the_answer() -> None:
    seen, transport = recorder(lambda request: httpx.Response(200, json=PREDICTION))
    with Client(URL, api_key="k", transport=transport) as client:
        answer = client.endpoints.predict("iris", [{"sepal_length": 5.1, "petal_width": 0.2}])
        client.endpoints.predict("iris", {"sepal_length": [5.1, 6.0], "petal_width": [0.2, 1.5]})
        client.endpoints.predict("iris", {"sepal_length": 5.1})
    assert answer.predictions[0]["label"] == "setosa" and (answer.model, answer.version) == ("iris", 3)
    assert [(r.method, r.url.path) for r in seen] == [("POST", "/api/v1/endpoints/iris/predict")] * 3
    assert [body(r) for r in seen] == [
        {"inputs": [{"sepal_length": 5.1, "petal_width": 0.2}]},
        {"inputs": {"sepal_length": [5.1, 6.0], "petal_width": [0.2, 1.5]}},
        {"inputs": [{"sepal_length": 5.1}]},
    ]


def test_predict_inputs_from_a_dataframe_and_numpy_values() -> None:
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame(
        {
            "x": [1.5, float("nan")],
            "n": np.array([1, 2], dtype=np.int64),
            "when": pd.to_datetime(["2024-01-02", None]),
            "tag": ["a", None],
            "ok": [True, False],
        }
    )
    rows = predict_inputs(frame)
    assert rows == [
        {"x": 1.5, "n": 1, "when": "2024-01-02T00:00:00", "tag": "a", "ok": True},
        {"x": None, "n": 2, "when": None, "tag": None, "ok": False},
    ]
    json.dumps(rows, allow_nan=False)  # what httpx sends: strict JSON
    assert predict_inputs({"x": np.array([1.0, 2.0]), "y": pd.Series([3, 4])}) == {"x": [1.0, 2.0], "y": [3, 4]}
    assert predict_inputs({"x": np.float64(1.0), "v": np.int32(2)}) == [{"x": 1.0, "v": 2}]
    assert predict_inputs([{"emb": [0.5, math.inf]}]) == [{"emb": [0.5, None]}]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ("sepal_length=5", "a list of rows, a dict of columns or a pandas DataFrame, not str"),
        (42, "not int"),
        ([], "give at least one row"),
        ({}, "give at least one row"),
        ([{"a": 1}, [1, 2]], "row 1 is a list"),
        ({"a": [1, 2], "b": [3]}, r"the same number of values \(a: 2, b: 1\)"),
        ({"a": [], "b": []}, "hold no values"),
        ({"a": [1], "b": 2}, "not a mix of both"),
        ([{"image": b"\x89PNG"}], "base64 text"),
        ([{"a": object()}], "cannot send a value of type object"),
    ],
)
def test_predict_refuses_inputs_it_cannot_send(inputs: Any, message: str) -> None:
    seen, transport = recorder(lambda request: httpx.Response(200, json=PREDICTION))
    with Client(URL, api_key="k", transport=transport) as client, pytest.raises(InvalidInput, match=message) as caught:
        client.endpoints.predict("iris", inputs)
    assert caught.value.param == "inputs" and seen == []


def test_predict_without_a_ready_replica_raises_with_retry_after() -> None:
    error = {"error": {"message": "endpoint 'iris' is loading", "type": "x", "code": "endpoint_loading", "param": None}}
    transport = httpx.MockTransport(lambda request: httpx.Response(503, json=error, headers={"Retry-After": "2"}))
    with Client(URL, api_key="k", transport=transport) as client, pytest.raises(ServiceUnavailable) as caught:
        client.endpoints.predict("iris", [{"a": 1}])
    assert caught.value.code == "endpoint_loading" and caught.value.headers == {"retry-after": "2"}


# -- wait_ready --------------------------------------------------------------------------------------------
def sequence(*states: str, **changes: Any) -> Callable[[httpx.Request], httpx.Response]:
    answers = iter(states)
    return lambda request: httpx.Response(200, json=endpoint(next(answers), **changes))


def test_wait_ready_polls_until_the_endpoint_is_ready_and_reports_each_look() -> None:
    ready_replica = [{"id": "r1", "version": 3, "state": "ready"}]
    answers = iter([
        endpoint("loading"),
        endpoint("loading", status={"state": "loading", "replicas": ready_replica}),  # the state decides
        endpoint("scaling", status={"state": "scaling", "replicas": []}),
        endpoint("ready"),
    ])
    seen, transport = recorder(lambda request: httpx.Response(200, json=next(answers)))
    looks: list[str] = []
    with Client(URL, api_key="k", transport=transport) as client:
        ready = client.endpoints.wait_ready("iris", 10, on_status=lambda e: looks.append(e.status.state))
    assert ready.status.state == "ready" and looks == ["loading", "loading", "scaling", "ready"] and len(seen) == 4
    scaling = httpx.MockTransport(lambda request: httpx.Response(200, json=endpoint(
        "scaling", status={"state": "scaling", "replicas": ready_replica})))
    with Client(URL, api_key="k", transport=scaling) as client:
        assert client.endpoints.wait_ready("iris").status.state == "scaling"


def test_wait_ready_accepts_scale_to_zero_and_raises_on_failure_or_timeout() -> None:
    idle = httpx.MockTransport(sequence("idle", min_replicas=0))
    with Client(URL, api_key="k", transport=idle) as client:
        assert client.endpoints.wait_ready("iris").status.state == "idle"
    failed = httpx.MockTransport(sequence("loading", "failed", status={"state": "failed", "reason": "bad onnx"}))
    with Client(URL, api_key="k", transport=failed) as client, pytest.raises(ServiceUnavailable) as caught:
        client.endpoints.wait_ready("iris")
    assert caught.value.code == "endpoint_failed" and "endpoint 'iris' failed: bad onnx" in caught.value.message
    stuck = httpx.MockTransport(lambda request: httpx.Response(200, json=endpoint("loading")))
    with Client(URL, api_key="k", transport=stuck) as client, pytest.raises(TimeoutError, match="after 0.3 s"):
        client.endpoints.wait_ready("iris", timeout=0.3)


# -- async -------------------------------------------------------------------------------------------------
async def test_async_endpoints_deploy_wait_predict_and_list() -> None:
    states = iter(["loading", "ready"])

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/predict"):
            return httpx.Response(200, json=PREDICTION)
        if request.method == "POST":
            return httpx.Response(201, json=endpoint("loading"))
        if request.url.path == "/api/v1/endpoints":
            return httpx.Response(200, json={"items": [endpoint()], "next_cursor": None})
        return httpx.Response(200, json=endpoint(next(states)))

    seen, transport = recorder(answer)
    async with AsyncClient(URL, api_key="k", transport=transport) as client:
        created = await client.deploy("iris", "iris@prod", max_batch_size=32)
        ready = await client.endpoints.wait_ready(created.name, timeout=10)
        answer_ = await client.endpoints.predict("iris", {"a": [1, 2]})
        names = [e.name async for e in client.endpoints.iter_all()]
    assert (ready.status.state, answer_.version, names) == ("ready", 3, ["iris"])
    assert body(seen[0]) == {"name": "iris", "model": "iris@prod", "max_batch_size": 32}
    assert body(seen[3]) == {"inputs": {"a": [1, 2]}}


# -- the OpenAI client -------------------------------------------------------------------------------------
def test_openai_client_targets_v1_with_the_same_key() -> None:
    pytest.importorskip("openai")
    import httpx2  # the HTTP library of the openai package

    calls: list[Any] = []

    def answer(request: Any) -> Any:
        calls.append((request.method, request.url.path, request.headers["authorization"]))
        data = [{"object": "embedding", "index": 0, "embedding": [0.25, 0.5]}]
        return httpx2.Response(200, json={"object": "list", "data": data, "model": "minilm",
                                          "usage": {"prompt_tokens": 1, "total_tokens": 1}})

    with Client(URL + "/", api_key="secret", timeout=7) as client:
        oa = client.openai(http_client=httpx2.Client(transport=httpx2.MockTransport(answer)), max_retries=0)
        result = oa.embeddings.create(model="minilm", input=["hello"], encoding_format="float")
    assert str(oa.base_url) == "http://aimaas.test/v1/" and oa.timeout == 7 and oa.max_retries == 0
    assert result.data[0].embedding == [0.25, 0.5]
    assert calls == [("POST", "/v1/embeddings", "Bearer secret")]


async def test_async_openai_client_and_missing_package_or_key(monkeypatch: pytest.MonkeyPatch) -> None:
    openai = pytest.importorskip("openai")
    async with AsyncClient(URL, api_key="k") as client:
        assert isinstance(client.openai(), openai.AsyncOpenAI)
        monkeypatch.setitem(__import__("sys").modules, "openai", None)  # as if it were not installed
        with pytest.raises(ModuleNotFoundError, match="pip install openai"):
            client.openai()
    monkeypatch.undo()
    with Client(URL, api_key=None) as keyless, pytest.raises(InvalidInput, match="needs an API key"):
        keyless.openai()
