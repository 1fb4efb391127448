"""Upload streaming/progress and atomic downloads: the SDK's own plumbing over a faked network."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from aimaas import errors
from aimaas.sdk import AsyncClient, Client
from aimaas.sdk._http import CHUNK_SIZE, iter_file

URL = "http://aimaas.test"
MiB = 1024 * 1024

VERSION = {
    "id": "dv_1",
    "dataset": "big",
    "version": 1,
    "format": "csv",
    "sha256": "0" * 64,
    "size_bytes": 0,
    "filename": "big.csv",
    "num_rows": 1,
    "columns": [{"name": "a", "type": "integer", "missing": 0}],
    "target_suggestion": None,
    "created_at": "2024-01-01T00:00:00Z",
    "created": True,
}


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.csv"
    path.write_bytes(b"a\n" + b"1\n" * int(1.25 * MiB))  # a little over 2.5 MiB
    return path


def upload_handler(received: dict[str, object]) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        received["method"] = request.method
        received["path"] = request.url.path
        received["params"] = dict(request.url.params)
        received["headers"] = dict(request.headers)
        received["body"] = request.content
        return httpx.Response(201, json=VERSION)

    return handler


def test_upload_streams_raw_bytes_with_progress(big_file: Path) -> None:
    received: dict[str, object] = {}
    calls: list[tuple[int, int]] = []
    transport = httpx.MockTransport(upload_handler(received))
    with Client(URL, api_key="k", transport=transport) as client:
        version = client.datasets.upload(big_file, name="big", format="csv", progress=lambda d, t: calls.append((d, t)))
    size = big_file.stat().st_size
    assert version.dataset == "big"
    assert received["method"] == "POST"
    assert received["path"] == "/api/v1/datasets/big/versions"
    assert received["params"] == {"filename": "big.csv", "format": "csv"}
    headers = received["headers"]
    assert isinstance(headers, dict)
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-length"] == str(size)
    assert "transfer-encoding" not in headers
    assert received["body"] == big_file.read_bytes()
    assert calls == [(0, size), (MiB, size), (2 * MiB, size), (size, size)]


async def test_async_upload_streams_with_progress(big_file: Path) -> None:
    received: dict[str, object] = {}
    calls: list[tuple[int, int]] = []
    transport = httpx.MockTransport(upload_handler(received))
    async with AsyncClient(URL, api_key="k", transport=transport) as client:
        await client.datasets.upload(big_file, name="big", progress=lambda d, t: calls.append((d, t)))
    assert received["params"] == {"filename": "big.csv"}
    assert received["body"] == big_file.read_bytes()
    assert [d for d, _ in calls] == [0, MiB, 2 * MiB, big_file.stat().st_size]


def test_the_upload_body_is_a_generator_of_1_mib_chunks(big_file: Path) -> None:
    chunks = iter_file(big_file, big_file.stat().st_size, None)
    assert isinstance(chunks, Iterator)
    sizes = [len(chunk) for chunk in chunks]
    assert sizes[:2] == [CHUNK_SIZE, CHUNK_SIZE] and sum(sizes) == big_file.stat().st_size


class _BrokenStream(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield b"row,part\n"
        raise httpx.ReadError("connection reset")


def test_a_failed_download_leaves_no_file(tmp_path: Path) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=_BrokenStream()))
    dest = tmp_path / "out.csv"
    with Client(URL, api_key="k", transport=transport) as client, pytest.raises(errors.ServiceUnavailable):
        client.datasets.download("d", dest=dest)
    assert list(tmp_path.iterdir()) == []


def test_a_download_error_answer_raises_and_leaves_no_file(tmp_path: Path) -> None:
    body = {"error": {"message": "no dataset 'd'", "type": "not_found_error", "code": "not_found", "param": None}}
    transport = httpx.MockTransport(lambda request: httpx.Response(404, json=body))
    with Client(URL, api_key="k", transport=transport) as client, pytest.raises(errors.NotFound):
        client.datasets.download("d", dest=tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


def test_download_into_a_folder_uses_the_server_file_name(tmp_path: Path) -> None:
    headers = {"content-disposition": 'attachment; filename="../answers.csv"'}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=b"a,b\n1,2\n", headers=headers))
    progress: list[tuple[int, int]] = []
    with Client(URL, api_key="k", transport=transport) as client:
        saved = client.datasets.download("d", dest=tmp_path, progress=lambda d, t: progress.append((d, t)))
    assert saved == tmp_path / "answers.csv"
    assert saved.read_bytes() == b"a,b\n1,2\n"
    assert progress[-1] == (8, 8)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answers.csv"]


async def test_async_download_replaces_the_destination_atomically(tmp_path: Path) -> None:
    dest = tmp_path / "out.csv"
    dest.write_bytes(b"old")
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=b"new content"))
    async with AsyncClient(URL, api_key="k", transport=transport) as client:
        saved = await client.datasets.download("d", 2, dest=dest)
    assert saved == dest and dest.read_bytes() == b"new content"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_a_destination_ending_in_a_slash_is_a_new_folder(tmp_path: Path) -> None:
    headers = {"content-disposition": 'attachment; filename="answers.csv"'}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=b"x\n", headers=headers))
    with Client(URL, api_key="k", transport=transport) as client:
        saved = client.datasets.download("d", dest=f"{tmp_path}/new/")
    assert saved == tmp_path / "new" / "answers.csv"
