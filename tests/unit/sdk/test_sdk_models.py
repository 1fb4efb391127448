"""The SDK's registry and training calls over a fake network: refs, paths, bodies, the folder zipper, jobs.wait."""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from aimaas.errors import InvalidInput
from aimaas.sdk import AsyncClient, Client, split_ref
from aimaas.sdk._archive import directory_files, zipped_directory

URL = "http://aimaas.test"
VERSION = {
    "model": "iris",
    "version": 2,
    "ref": "iris/2",
    "status": "ready",
    "task": "classification",
    "format": "onnx",
    "sha256": "0" * 64,
    "size_bytes": 10,
    "created_at": "2024-01-01T00:00:00Z",
}
JOB = {
    "id": "job_1",
    "kind": "train",
    "entrypoint": "aimaas.training.runner:run",
    "params": {},
    "state": "queued",
    "priority": 0,
    "progress": 0.0,
    "created_at": "2024-01-01T00:00:00Z",
}


# -- refs --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ref", "sel", "expected"),
    [
        ("iris", None, ("iris", "latest")),
        ("iris/3", None, ("iris", "3")),
        ("iris@prod", None, ("iris", "prod")),
        ("iris@latest", None, ("iris", "latest")),
        ("my.model-v2_x/12", None, ("my.model-v2_x", "12")),
        ("iris", 3, ("iris", "3")),
        ("iris", "prod", ("iris", "prod")),
    ],
)
def test_split_ref(ref: str, sel: int | str | None, expected: tuple[str, str]) -> None:
    assert split_ref(ref, sel) == expected


@pytest.mark.parametrize(
    ("ref", "sel", "message"),
    [
        ("", None, "a model reference is required"),
        ("  ", None, "a model reference is required"),
        ("iris/", None, "a version number after '/'"),
        ("/3", None, "a version number after '/'"),
        ("iris@", None, "an alias after '@'"),
        ("iris/prod", None, "must be a positive integer"),
        ("iris/0", None, "must be a positive integer"),
        ("iris/1/2", None, "a version number after '/'"),
        ("iris/1@prod", None, "not both"),
        ("iris/1", 2, "not both"),
        ("iris", "", "is empty"),
    ],
)
def test_split_ref_refuses_malformed_refs(ref: str, sel: int | str | None, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        split_ref(ref, sel)
    assert caught.value.param == "ref"


# -- the folder zipper -------------------------------------------------------------------------------------
def hf_folder(root: Path) -> Path:
    folder = root / "tiny-bert"
    (folder / "tokenizer").mkdir(parents=True)
    (folder / ".git" / "objects").mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "bert"}')
    (folder / "model.safetensors").write_bytes(os.urandom(3000))
    (folder / "tokenizer" / "vocab.txt").write_text("[PAD]\n[UNK]\nhello\n")
    (folder / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    (folder / ".git" / "objects" / "blob").write_bytes(b"history")
    return folder


def test_directory_files_are_relative_sorted_and_skip_hidden_entries(tmp_path: Path) -> None:
    folder = hf_folder(tmp_path)
    names = [name for _, name in directory_files(folder)]
    assert names == ["config.json", "model.safetensors", "tokenizer/vocab.txt"]


def test_zipped_directory_holds_the_files_and_is_removed_afterwards(tmp_path: Path) -> None:
    folder = hf_folder(tmp_path)
    with zipped_directory(folder) as archive:
        assert archive.name == "tiny-bert.zip" and archive.parent != folder
        with zipfile.ZipFile(archive) as z:
            assert z.namelist() == ["config.json", "model.safetensors", "tokenizer/vocab.txt"]
            assert z.read("model.safetensors") == (folder / "model.safetensors").read_bytes()
            assert all(info.compress_type == zipfile.ZIP_STORED for info in z.infolist())
            assert z.testzip() is None
    assert not archive.exists() and not archive.parent.exists()


def test_links_are_refused_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not upload")
    folder = hf_folder(tmp_path)
    (folder / "weights.bin").symlink_to(secret)
    with pytest.raises(InvalidInput, match="weights.bin is a symbolic link; links are not followed"):
        directory_files(folder)
    (folder / "weights.bin").unlink()
    (folder / "more").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(InvalidInput, match="more is a symbolic link"):
        directory_files(folder)


def test_an_empty_folder_or_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty" / ".cache").mkdir(parents=True)
    with pytest.raises(InvalidInput, match="holds no file"):
        directory_files(tmp_path / "empty")
    (tmp_path / "f.onnx").write_bytes(b"x")
    with pytest.raises(InvalidInput, match="is not a folder"):
        directory_files(tmp_path / "f.onnx")


# -- requests ----------------------------------------------------------------------------------------------
def recorder(answer: Callable[[httpx.Request], httpx.Response]) -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return answer(request)

    return seen, httpx.MockTransport(handler)


def test_train_sends_only_given_fields_and_the_idempotency_key() -> None:
    seen, transport = recorder(lambda request: httpx.Response(201, json=JOB))
    with Client(URL, api_key="k", transport=transport) as client:
        job = client.train("iris", "species", budget_s=5, max_trials=3, params={"C": 1.0}, idempotency_key="once")
        client.train("blobs", task="clustering")
    assert job.id == "job_1"
    first, second = seen
    assert (first.method, first.url.path) == ("POST", "/api/v1/train")
    assert first.headers["idempotency-key"] == "once"
    assert json.loads(first.content) == {
        "dataset": "iris",
        "target": "species",
        "task": "auto",
        "budget_s": 5,
        "max_trials": 3,
        "params": {"C": 1.0},
        "seed": 0,
        "parallel_trials": 1,
        "priority": 0,
    }
    assert "idempotency-key" not in second.headers
    assert json.loads(second.content) == {
        "dataset": "blobs",
        "task": "clustering",
        "seed": 0,
        "parallel_trials": 1,
        "priority": 0,
    }


def registry_answer(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path.endswith("/card"):
        return httpx.Response(200, text="# iris/2\n\nf1_macro 0.97", headers={"content-type": "text/markdown"})
    if path.endswith("/report"):
        return httpx.Response(200, json={"confusion_matrix": [[1, 0], [0, 1]]})
    if path.endswith(".png") or path.endswith("/download"):
        return httpx.Response(200, content=b"\x89PNG-or-model", headers={"content-disposition": 'filename="m.onnx"'})
    if request.method == "DELETE":
        return httpx.Response(204)
    return httpx.Response(200, json=VERSION)


def test_registry_calls_use_the_contract_paths(tmp_path: Path) -> None:
    seen, transport = recorder(registry_answer)
    with Client(URL, api_key="k", transport=transport) as client:
        assert client.models.version("iris@prod").ref == "iris/2"
        client.models.version("iris", 2)
        assert client.models.card("iris/2").startswith("# iris/2")
        assert client.models.report("iris")["confusion_matrix"] == [[1, 0], [0, 1]]
        plot = client.models.plot("iris/2", "confusion matrix", tmp_path / "cm.png")
        saved = client.models.download("iris@prod", tmp_path, file="preprocessing.json")
        client.models.set_status("iris/2", "archived")
        client.models.delete_alias("iris", "prod")
    assert plot.read_bytes() == b"\x89PNG-or-model" and saved == tmp_path / "m.onnx"
    calls = [(r.method, r.url.raw_path.decode()) for r in seen]
    assert calls == [
        ("GET", "/api/v1/models/iris/versions/prod"),
        ("GET", "/api/v1/models/iris/versions/2"),
        ("GET", "/api/v1/models/iris/versions/2/card"),
        ("GET", "/api/v1/models/iris/versions/latest/report"),
        ("GET", "/api/v1/models/iris/versions/2/plots/confusion%20matrix.png"),
        ("GET", "/api/v1/models/iris/versions/prod/download?file=preprocessing.json"),
        ("PATCH", "/api/v1/models/iris/versions/2"),
        ("DELETE", "/api/v1/models/iris/aliases/prod"),
    ]
    assert json.loads(seen[6].content) == {"status": "archived"}


def test_compare_repeats_the_ref_parameter_and_checks_refs_first() -> None:
    comparison = {"versions": [VERSION, VERSION], "metrics": {"f1_macro": [0.9, None]}, "same_test_split": True}
    seen, transport = recorder(lambda request: httpx.Response(200, json=comparison))
    with Client(URL, api_key="k", transport=transport) as client:
        result = client.models.compare(["iris/1", "iris@prod"])
        with pytest.raises(InvalidInput, match="a list of 2 to 10 model refs"):
            client.models.compare("iris/1")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="positive integer"):
            client.models.compare(["iris/1", "iris/x"])
    assert result.metrics == {"f1_macro": [0.9, None]}
    assert len(seen) == 1 and seen[0].url.params.get_list("ref") == ["iris/1", "iris@prod"]


def import_answer(received: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        received["params"] = dict(request.url.params)
        received["headers"] = request.headers
        received["body"] = request.content
        return httpx.Response(201, json=VERSION)

    return answer


def test_import_of_a_folder_sends_a_zip_and_leaves_nothing_behind(tmp_path: Path) -> None:
    import io

    folder = hf_folder(tmp_path)
    before = set(tmp_path.rglob("*"))
    received: dict[str, Any] = {}
    progress: list[tuple[int, int]] = []
    _, transport = recorder(import_answer(received))
    with Client(URL, api_key="k", transport=transport) as client:
        version = client.models.import_file(
            "bert", folder, task="embedding", description="tiny", progress=lambda d, t: progress.append((d, t))
        )
    assert version.ref == "iris/2"
    assert received["params"] == {"filename": "tiny-bert.zip", "task": "embedding", "description": "tiny"}
    assert received["headers"]["content-type"] == "application/octet-stream"
    body = received["body"]
    assert received["headers"]["content-length"] == str(len(body)) and progress[-1] == (len(body), len(body))
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        assert z.namelist() == ["config.json", "model.safetensors", "tokenizer/vocab.txt"]
    assert set(tmp_path.rglob("*")) == before


async def test_async_import_of_a_file_and_of_a_folder(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(b"onnx-bytes")
    folder = hf_folder(tmp_path)
    received: dict[str, Any] = {}
    _, transport = recorder(import_answer(received))
    async with AsyncClient(URL, api_key="k", transport=transport) as client:
        await client.models.import_file("m", model)
        assert received["params"] == {"filename": "m.onnx"} and received["body"] == b"onnx-bytes"
        await client.models.import_file("bert", folder)
        assert received["params"] == {"filename": "tiny-bert.zip"} and received["body"][:2] == b"PK"
        with pytest.raises(InvalidInput, match="does not exist"):
            await client.models.import_file("m", tmp_path / "missing.onnx")


def test_jobs_wait_polls_until_the_job_ends_and_can_time_out() -> None:
    states = iter(["queued", "running", "running", "succeeded"])
    seen, transport = recorder(lambda request: httpx.Response(200, json=JOB | {"state": next(states)}))
    with Client(URL, api_key="k", transport=transport) as client:
        assert client.jobs.wait("job_1").state == "succeeded"
        assert len(seen) == 4
        stuck = Client(URL, api_key="k", transport=httpx.MockTransport(lambda r: httpx.Response(200, json=JOB)))
        with stuck, pytest.raises(TimeoutError, match="job job_1 has not ended after 0.3 s"):
            stuck.jobs.wait("job_1", timeout=0.3)


async def test_async_jobs_wait_and_train() -> None:
    states = iter(["running", "failed"])

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json=JOB)
        return httpx.Response(200, json=JOB | {"state": next(states), "error": "boom"})

    async with AsyncClient(URL, api_key="k", transport=httpx.MockTransport(answer)) as client:
        job = await client.train("iris", "species", trainer="logistic_regression")
        ended = await client.jobs.wait(job.id, timeout=10)
    assert (ended.state, ended.error) == ("failed", "boom")
