"""Every bad upload gets a clear 4xx in the one envelope, and leaves nothing on disk or in the database."""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer, start_server, stop_server
from tests.integration.test_api_auth import assert_envelope
from tests.integration.test_api_datasets import upload


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def zip_bytes(entries: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

CASES = {
    "empty": (b"", "a.csv", None, 422, "empty_file", "empty"),
    "header-only": (b"a,b,c\n", "a.csv", None, 422, "empty_file", "no rows"),
    "ragged-csv": (b"a,b\n1,2\n3,4,5\n6,7\n", "a.csv", None, 422, "malformed_csv", "line 3"),
    "bad-jsonl": (b'{"a": 1}\n{"a": 2,,}\n', "a.jsonl", None, 422, "malformed_jsonl", "line 2"),
    "jsonl-not-object": (b'{"a": 1}\n[1, 2]\n', "a.jsonl", None, 422, "malformed_jsonl", "line 2"),
    "latin1": ("name,city\nJosé,Bogotá\nRené,Zürich\n".encode("latin-1"), "a.csv", None, 422, "bad_encoding", "UTF-8"),
    "unknown-type": (b"\x7fELF\x02\x01\x01" + b"\x00" * 100, "tool.exe", None, 415, "unsupported_format", "csv"),
    "bad-format-hint": (b"a,b\n1,2\n", "a.csv", "xlsx", 415, "unsupported_format", "xlsx"),
    "corrupt-parquet": (b"PAR1" + b"\x00" * 50 + b"PAR1", "a.parquet", None, 422, None, "arquet"),
    "zip-dotdot": (zip_bytes({"../evil.txt": b"x"}), "c.zip", None, 422, "unsafe_archive", ".."),
    "zip-absolute": (zip_bytes({"/etc/evil.txt": b"x"}), "c.zip", None, 422, "unsafe_archive", "/etc/evil.txt"),
    "zip-symlink": (
        zip_bytes({"docs/a.txt": b"hello"}, symlink="docs/link.txt"),
        "c.zip",
        None,
        422,
        "unsafe_archive",
        "link",
    ),
    "zip-bomb": (zip_bytes({"docs/big.txt": b"0" * 50_000_000}), "c.zip", None, 413, "archive_too_large", "zip bomb"),
    "zip-no-usable-files": (zip_bytes({"readme.bin": b"\x00\x01"}), "c.zip", None, 415, "unsupported_format", "zip"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_upload_is_refused_and_leaves_nothing(
    live_server: LiveServer, admin: httpx.Client, unique_name: str, case: str
) -> None:
    data, filename, fmt, status, code, needle = CASES[case]
    before = files_under(live_server.home / "artifacts")
    resp = upload(admin, unique_name, data, filename, fmt)
    err = assert_envelope(resp, status, code)
    assert needle.lower() in err["message"].lower(), err
    assert err["param"] in ("file", "format", None)
    assert files_under(live_server.home / "artifacts") == before
    assert files_under(live_server.home / "staging") == []
    assert_envelope(admin.get(f"/api/v1/datasets/{unique_name}"), 404)
    assert admin.get("/healthz").status_code == 200  # and the server keeps serving


def test_pickle_bodies_are_415(admin: httpx.Client, unique_name: str) -> None:
    resp = admin.post(
        f"/api/v1/datasets/{unique_name}/versions",
        content=b"\x80\x04K\x01.",
        headers={"content-type": "application/x-python-pickle"},
    )
    assert "pickle" in assert_envelope(resp, 415)["message"]


def test_invalid_dataset_name(admin: httpx.Client) -> None:
    err = assert_envelope(upload(admin, "bad%20name%21", b"a\n1\n", "a.csv"), 422)
    assert err["param"] == "name"


def test_multipart_without_file_field(admin: httpx.Client, unique_name: str) -> None:
    resp = admin.post(f"/api/v1/datasets/{unique_name}/versions", files={"data": ("a.csv", b"a\n1\n")})
    assert "file" in assert_envelope(resp, 400)["message"]


@pytest.fixture(scope="module")
def small_cap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(tmp_path_factory.mktemp("capped") / "home", extra_env={"AIMAAS_MAX_UPLOAD_BYTES": "100000"})
    yield server
    stop_server(server)


def test_too_large_upload_is_413_and_leaves_nothing(small_cap_server: LiveServer) -> None:
    data = b"a,b\n" + b"1,2\n" * 50_000  # 200 kB > 100 kB cap
    with small_cap_server.client() as c:
        err = assert_envelope(upload(c, "big", data, "big.csv"), 413, "payload_too_large")
        assert "100,000" in err["message"]

        def chunked() -> Iterator[bytes]:  # no Content-Length: the cap is enforced while streaming
            for _ in range(50):
                yield b"1,2\n" * 1000

        resp = c.post(
            "/api/v1/datasets/big/versions",
            params={"filename": "big.csv"},
            content=chunked(),
            headers={"content-type": "application/octet-stream"},
        )
        assert_envelope(resp, 413, "payload_too_large")
        multipart = c.post("/api/v1/datasets/big/versions", files={"file": ("big.csv", data)})
        assert_envelope(multipart, 413, "payload_too_large")
        assert files_under(small_cap_server.home / "staging") == []
        assert files_under(small_cap_server.home / "artifacts") == []
        assert_envelope(c.get("/api/v1/datasets/big"), 404)
        assert upload(c, "small", b"a,b\n1,2\n", "s.csv").status_code == 201
