"""Dataset lifecycle over raw HTTP against a real server."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import httpx

from tests.conftest import LiveServer
from tests.integration.test_api_auth import assert_envelope

CSV = b"age,hours,passed\n17,3.5,yes\n18,1.0,no\n16,,yes\n17,4.0,yes\n19,0.5,no\n18,2.5,yes\n"


def upload(client: httpx.Client, name: str, data: bytes, filename: str, fmt: str | None = None) -> httpx.Response:
    params = {"filename": filename} | ({"format": fmt} if fmt else {})
    return client.post(
        f"/api/v1/datasets/{name}/versions",
        params=params,
        content=data,
        headers={"content-type": "application/octet-stream"},
    )


def test_csv_lifecycle(admin: httpx.Client, unique_name: str) -> None:
    first = upload(admin, unique_name, CSV, "marks.csv")
    assert first.status_code == 201, first.text
    v1 = first.json()
    assert v1["version"] == 1 and v1["format"] == "csv" and v1["num_rows"] == 6 and v1["created"]
    assert v1["sha256"] == hashlib.sha256(CSV).hexdigest()
    assert [c["name"] for c in v1["columns"]] == ["age", "hours", "passed"]
    assert {c["name"]: c["missing"] for c in v1["columns"]}["hours"] == 1
    assert v1["target_suggestion"] == "passed"

    again = upload(admin, unique_name, CSV, "other-name.csv")
    assert again.status_code == 200 and again.json()["id"] == v1["id"] and not again.json()["created"]

    second = upload(admin, unique_name, CSV + b"20,5.0,yes\n", "marks.csv")
    assert second.status_code == 201 and second.json()["version"] == 2

    detail = admin.get(f"/api/v1/datasets/{unique_name}").json()
    assert detail["latest_version"] == 2 and [v["version"] for v in detail["versions"]] == [1, 2]

    preview = admin.get(f"/api/v1/datasets/{unique_name}/versions/1/preview", params={"offset": 2, "limit": 3}).json()
    assert preview["total_rows"] == 6 and preview["columns"] == ["age", "hours", "passed"]
    assert preview["rows"][0]["age"] == 16 and preview["rows"][0]["hours"] is None and len(preview["rows"]) == 3

    stats = admin.get(f"/api/v1/datasets/{unique_name}/versions/1/stats").json()
    hours = next(c for c in stats["columns"] if c["name"] == "hours")
    assert hours["missing"] == 1 and abs(hours["mean"] - 2.3) < 1e-9 and hours["max"] == 4.0

    body = admin.get(f"/api/v1/datasets/{unique_name}/versions/1/download")
    assert body.status_code == 200 and body.content == CSV
    assert "attachment" in body.headers["content-disposition"]

    assert admin.delete(f"/api/v1/datasets/{unique_name}").status_code == 204
    assert_envelope(admin.get(f"/api/v1/datasets/{unique_name}"), 404)


def test_multipart_upload(admin: httpx.Client, unique_name: str) -> None:
    resp = admin.post(
        f"/api/v1/datasets/{unique_name}/versions",
        files={"file": ("answers.tsv", b"q\ta\n1\tx\n2\ty\n", "text/tab-separated-values")},
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["format"] == "tsv" and resp.json()["filename"] == "answers.tsv"


def test_split_is_deterministic_and_stratified(admin: httpx.Client, unique_name: str) -> None:
    rows = "".join(f"{i},{'a' if i % 4 else 'b'}\n" for i in range(200))
    assert upload(admin, unique_name, ("x,label\n" + rows).encode(), "d.csv").status_code == 201
    req = {"train": 0.5, "validation": 0.25, "test": 0.25, "seed": 7, "stratify_by": "label"}
    first = admin.post(f"/api/v1/datasets/{unique_name}/splits", json=req)
    assert first.status_code == 201, first.text
    assert first.json()["counts"] == {"train": 100, "validation": 50, "test": 50}
    same = admin.post(f"/api/v1/datasets/{unique_name}/splits", json=req)
    assert same.status_code == 200 and same.json()["id"] == first.json()["id"]
    listed = admin.get(f"/api/v1/datasets/{unique_name}/versions/latest/splits").json()["items"]
    assert [s["id"] for s in listed] == [first.json()["id"]]
    csv_text = admin.get(
        f"/api/v1/datasets/{unique_name}/versions/1/splits/{first.json()['id']}/download"
    ).text.splitlines()
    assert csv_text[0] == "row,part" and len(csv_text) == 201
    parts = {int(r.split(",")[0]): r.split(",")[1] for r in csv_text[1:]}
    b_rows = [i for i in range(200) if i % 4 == 0]
    assert sum(parts[i] == "train" for i in b_rows) == len(b_rows) // 2  # stratified: half of class b in train
    bad = admin.post(f"/api/v1/datasets/{unique_name}/splits", json={**req, "stratify_by": "nope"})
    assert assert_envelope(bad, 422)["param"] == "stratify_by"
    bad = admin.post(f"/api/v1/datasets/{unique_name}/splits", json={"train": 0.9, "validation": 0.2, "test": 0.1})
    assert "equal 1" in assert_envelope(bad, 422)["message"]


def test_jsonl_text_and_zip_formats(admin: httpx.Client, unique_name: str) -> None:
    jsonl = b"".join(json.dumps({"text": f"answer {i}", "score": i % 3}).encode() + b"\n" for i in range(10))
    assert upload(admin, f"{unique_name}-j", jsonl, "a.jsonl").json()["num_rows"] == 10
    text = upload(admin, f"{unique_name}-t", b"first document\nsecond document\n", "corpus.txt").json()
    assert text["format"] == "text" and text["num_rows"] == 2
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("notes/unit1.md", "# Unit 1\nPhotosynthesis")
        zf.writestr("notes/unit2.txt", "Cells and tissues")
    course = upload(admin, f"{unique_name}-z", buf.getvalue(), "course.zip").json()
    assert course["format"] == "text_zip" and course["num_rows"] == 2
    pq = admin.get(f"/api/v1/datasets/{unique_name}-z/versions/latest/preview").json()
    assert {r["path"] for r in pq["rows"]} == {"notes/unit1.md", "notes/unit2.txt"}


def test_dataset_in_use_cannot_be_deleted(live_server: LiveServer, unique_name: str) -> None:
    """A reference (as jobs and models will register) blocks deletion with 409 and deletes nothing."""
    from aimaas.apps.container import build_container
    from aimaas.config import Settings
    from aimaas.services.tenants import system_principal

    with live_server.client() as admin:
        assert upload(admin, unique_name, CSV, "m.csv").status_code == 201
        container = build_container(Settings(home=live_server.home))
        try:
            principal = system_principal(container.services.tenants.operator_tenant())
            container.services.datasets.add_reference(principal, unique_name, "model_version", "mv_123")
            container.services.datasets.add_reference(principal, unique_name, "job", "job_gone")
            err = assert_envelope(admin.delete(f"/api/v1/datasets/{unique_name}"), 409, "dataset_in_use")
            assert "model_version mv_123" in err["message"]
            assert "job_gone" not in err["message"]  # a job that no longer runs holds nothing (stale, removed)
            assert admin.get(f"/api/v1/datasets/{unique_name}/versions/1/download").content == CSV
            container.services.datasets.remove_reference(principal, unique_name, "model_version", "mv_123")
        finally:
            container.close()
        assert admin.delete(f"/api/v1/datasets/{unique_name}").status_code == 204
