"""The SDK (sync and async) against a real `aimaas serve` on 127.0.0.1."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from aimaas import errors
from aimaas.sdk import AsyncClient, Client
from tests.conftest import LiveServer

CSV = b"age,hours,passed\n17,3.5,yes\n18,1.0,no\n16,,yes\n17,4.0,yes\n19,0.5,no\n18,2.5,yes\n"
RAGGED = b"a,b\n1,2\n3,4,5\n6,7\n"


@pytest.fixture
def client(live_server: LiveServer) -> Iterator[Client]:
    with Client(live_server.url, live_server.admin_key) as c:
        yield c


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "marks.csv"
    path.write_bytes(CSV)
    return path


def test_service_probes_and_whoami(client: Client) -> None:
    assert client.health() == {"status": "ok"}
    assert client.ready() == {"status": "ready"}
    me = client.whoami()
    assert me.tenant.name == "default"
    assert "admin" in me.key.scopes


def test_dataset_lifecycle(client: Client, csv_file: Path, unique_name: str, tmp_path: Path) -> None:
    progress: list[tuple[int, int]] = []
    v1 = client.datasets.upload(csv_file, name=unique_name, progress=lambda d, t: progress.append((d, t)))
    assert (v1.dataset, v1.version, v1.format, v1.num_rows, v1.created) == (unique_name, 1, "csv", 6, True)
    assert v1.sha256 == hashlib.sha256(CSV).hexdigest() and v1.filename == "marks.csv"
    assert [c.name for c in v1.columns] == ["age", "hours", "passed"]
    assert progress[0] == (0, len(CSV)) and progress[-1] == (len(CSV), len(CSV))

    again = client.datasets.upload(csv_file, name=unique_name, format="csv")
    assert again.id == v1.id and not again.created

    assert unique_name in {d.name for d in client.datasets.iter_all()}
    detail = client.datasets.get(unique_name)
    assert detail.latest_version == 1 and [v.version for v in detail.versions] == [1]
    assert [v.id for v in client.datasets.versions(unique_name).items] == [v1.id]
    assert client.datasets.version(unique_name).id == v1.id
    assert client.datasets.version(unique_name, 1).id == v1.id

    page = client.datasets.preview(unique_name, offset=2, limit=3)
    assert page.total_rows == 6 and page.columns == ["age", "hours", "passed"] and len(page.rows) == 3
    assert page.rows[0]["age"] == 16 and page.rows[0]["hours"] is None

    stats = client.datasets.stats(unique_name, version=1)
    hours = next(c for c in stats.columns if c["name"] == "hours")
    assert stats.num_rows == 6 and hours["missing"] == 1 and abs(hours["mean"] - 2.3) < 1e-9

    split = client.datasets.split(unique_name, train=0.5, validation=0.25, test=0.25, seed=3)
    assert sum(split.counts.values()) == 6 and split.seed == 3
    assert client.datasets.split(unique_name, train=0.5, validation=0.25, test=0.25, seed=3).id == split.id
    assert [s.id for s in client.datasets.splits(unique_name).items] == [split.id]
    parts = client.datasets.download_split(unique_name, split.id, dest=tmp_path / "parts.csv").read_text()
    assert parts.splitlines()[0] == "row,part" and len(parts.splitlines()) == 7

    saved = client.datasets.download(unique_name, dest=tmp_path / "copy.csv")
    assert saved.read_bytes() == CSV
    folder = tmp_path / "downloads"
    folder.mkdir()
    into_folder = client.datasets.download(unique_name, version=1, dest=folder)
    assert into_folder.parent == folder and into_folder.read_bytes() == CSV

    client.datasets.delete(unique_name)
    with pytest.raises(errors.NotFound):
        client.datasets.get(unique_name)


def test_missing_dataset_is_not_found(client: Client, unique_name: str) -> None:
    with pytest.raises(errors.NotFound) as caught:
        client.datasets.get(unique_name)
    error = caught.value
    assert error.code == "not_found" and unique_name in error.message
    assert getattr(error, "status_code") == 404  # noqa: B009
    assert getattr(error, "request_id")  # noqa: B009


def test_bad_key_is_unauthorized(live_server: LiveServer) -> None:
    with Client(live_server.url, "aimaas-not-a-real-key") as c, pytest.raises(errors.Unauthorized) as caught:
        c.datasets.list()
    assert caught.value.code == "invalid_api_key"
    assert "aimaas-not-a-real-key" not in caught.value.message


def test_malformed_csv_is_invalid_input_naming_the_file(client: Client, tmp_path: Path, unique_name: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(RAGGED)
    with pytest.raises(errors.InvalidInput) as caught:
        client.datasets.upload(bad, name=unique_name)
    assert caught.value.code == "malformed_csv" and caught.value.param == "file"
    assert "line 3" in caught.value.message.lower()


def test_bad_split_fractions_are_invalid_input(client: Client, csv_file: Path, unique_name: str) -> None:
    client.datasets.upload(csv_file, name=unique_name)
    with pytest.raises(errors.InvalidInput):
        client.datasets.split(unique_name, train=0.9, validation=0.3, test=0.3)


def test_listing_follows_cursors(client: Client, csv_file: Path, unique_name: str) -> None:
    names = [f"{unique_name}-{i}" for i in range(3)]
    for name in names:
        client.datasets.upload(csv_file, name=name)
    first = client.datasets.list(limit=1)
    assert len(first.items) == 1 and first.next_cursor
    assert set(names) <= {d.name for d in client.datasets.iter_all(page_size=1)}


def test_tenants_keys_and_scopes(client: Client, live_server: LiveServer, csv_file: Path, unique_name: str) -> None:
    tenant = client.tenants.create(unique_name.lower())
    assert client.tenants.get(tenant.id) == tenant
    assert tenant.id in {t.id for t in client.tenants.iter_all()}

    writer = client.keys.create(name="writer", scopes=["write"], tenant_id=tenant.id)
    reader = client.keys.create(name="reader", scopes=["read"], tenant_id=tenant.id, expires_at="2999-01-01T00:00:00Z")
    assert writer.key and writer.tenant_id == tenant.id and reader.expires_at is not None
    assert {writer.id, reader.id} <= {k.id for k in client.keys.list(tenant_id=tenant.id).items}

    with Client(live_server.url, writer.key) as as_writer:
        assert as_writer.whoami().tenant.id == tenant.id
        as_writer.datasets.upload(csv_file, name="private")
    with Client(live_server.url, reader.key) as as_reader:
        assert [d.name for d in as_reader.datasets.list().items] == ["private"]
        with pytest.raises(errors.Forbidden):
            as_reader.datasets.delete("private")
    with pytest.raises(errors.NotFound):  # another tenant's dataset is invisible
        client.datasets.get("private")

    revoked = client.keys.revoke(reader.id, tenant_id=tenant.id)
    assert revoked.revoked_at is not None
    with Client(live_server.url, reader.key) as as_reader, pytest.raises(errors.Unauthorized):
        as_reader.whoami()


def test_environment_configures_the_client(live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMAAS_URL", live_server.url)
    monkeypatch.setenv("AIMAAS_API_KEY", live_server.admin_key)
    with Client() as c:
        assert c.whoami().tenant.name == "default"


async def test_async_lifecycle(live_server: LiveServer, csv_file: Path, unique_name: str, tmp_path: Path) -> None:
    async with AsyncClient(live_server.url, live_server.admin_key) as client:
        assert (await client.health())["status"] == "ok"
        progress: list[int] = []
        v1 = await client.datasets.upload(csv_file, name=unique_name, progress=lambda d, t: progress.append(d))
        assert v1.num_rows == 6 and progress[-1] == len(CSV)
        assert unique_name in [d.name async for d in client.datasets.iter_all()]
        assert (await client.datasets.get(unique_name)).latest_version == 1
        assert (await client.datasets.preview(unique_name, limit=2)).rows[1]["passed"] == "no"
        assert (await client.datasets.stats(unique_name)).num_rows == 6
        split = await client.datasets.split(unique_name, seed=1)
        assert [s.id for s in (await client.datasets.splits(unique_name, 1)).items] == [split.id]
        saved = await client.datasets.download(unique_name, dest=tmp_path / "copy.csv")
        assert saved.read_bytes() == CSV
        await client.datasets.delete(unique_name)
        with pytest.raises(errors.NotFound):
            await client.datasets.version(unique_name)


async def test_async_typed_errors(live_server: LiveServer, tmp_path: Path, unique_name: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(RAGGED)
    async with AsyncClient(live_server.url, live_server.admin_key) as client:
        with pytest.raises(errors.InvalidInput) as caught:
            await client.datasets.upload(bad, name=unique_name)
        assert caught.value.param == "file"
        with pytest.raises(errors.NotFound):
            await client.datasets.stats(unique_name)
    async with AsyncClient(live_server.url, "wrong") as client:
        with pytest.raises(errors.Unauthorized):
            await client.whoami()
