"""Importing external models over HTTP: an ONNX file, a zipped Hugging Face directory, a GGUF file; pickle-based
and broken files are refused with a clear 422 and leave nothing behind."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import LiveServer
from tests.integration.test_api_auth import assert_envelope
from tests.unit.services.test_model_imports import _llama_entries, _write_gguf


@pytest.fixture(scope="module")
def admin(live_server: LiveServer) -> Iterator[httpx.Client]:
    with live_server.client() as client:
        yield client


def onnx_bytes() -> bytes:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LinearRegression

    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    return to_onnx(LinearRegression().fit(X, X.sum(axis=1)), X[:1]).SerializeToString()


def zipped(entries: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buf.getvalue()


def post(admin: httpx.Client, name: str, data: bytes, filename: str, **params: str) -> httpx.Response:
    return admin.post(f"/api/v1/models/{name}/import", params={"filename": filename, **params}, content=data)


def test_import_onnx_reads_the_signature_and_downloads_the_same_bytes(admin: httpx.Client) -> None:
    data = onnx_bytes()
    resp = post(admin, "ext-onnx", data, "linear.onnx", task="regression")
    assert resp.status_code == 201, resp.text
    version = resp.json()
    assert version["format"] == "onnx" and version["task"] == "regression" and version["version"] == 1
    assert version["signature"]["inputs"][0]["shape"][1] == 2 and version["lineage"]["source"] == "import"
    assert admin.get("/api/v1/models/ext-onnx/versions/1/download").content == data
    assert "not trained or evaluated by aimaas" in admin.get("/api/v1/models/ext-onnx/versions/1/card").text


def test_import_hf_directory_keeps_only_checked_files(admin: httpx.Client) -> None:
    entries = _llama_entries("my-model/")
    entries["my-model/.DS_Store"] = b"junk"
    resp = post(admin, "ext-llm", zipped(entries), "my-model.zip")
    assert resp.status_code == 201, resp.text
    version = resp.json()
    assert version["format"] == "safetensors" and version["task"] == "text-generation"
    stored = zipfile.ZipFile(io.BytesIO(admin.get("/api/v1/models/ext-llm/versions/latest/download").content))
    names = set(stored.namelist())
    assert "config.json" in names and ".DS_Store" not in names and not any(n.startswith("my-model/") for n in names)


def test_import_gguf(admin: httpx.Client, tmp_path: Path) -> None:
    path = _write_gguf(tmp_path / "tiny.gguf")
    resp = post(admin, "ext-gguf", path.read_bytes(), "tiny.gguf")
    assert resp.status_code == 201, resp.text
    assert resp.json()["format"] == "gguf" and resp.json()["lineage"]["info"]["architecture"] == "llama"


@pytest.mark.parametrize(
    ("data", "filename", "needle"),
    [
        (b"\x80\x04\x95" + b"\x00" * 40, "model.pkl", "pickle"),
        (zipped({"config.json": "{}", "pytorch_model.bin": b"\x80\x02"}), "model.zip", "safetensors"),
        (b"\x08\x07garbage-not-onnx" * 10, "broken.onnx", "ONNX"),
        (b"", "empty.onnx", "empty"),
    ],
)
def test_refused_imports_leave_nothing(admin: httpx.Client, data: bytes, filename: str, needle: str) -> None:
    err = assert_envelope(post(admin, "ext-refused", data, filename), 422)
    assert needle.lower() in err["message"].lower(), err
    assert_envelope(admin.get("/api/v1/models/ext-refused"), 404)
