"""Datasets: upload versions, read, preview, stats, split, download, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import iterate_in_threadpool, run_in_threadpool
from fastapi.responses import StreamingResponse

from aimaas.api.deps import Paging, Read, ServicesDep, Write
from aimaas.api.uploads import receive_upload, upload_body
from aimaas.domain import Dataset, DatasetSplit, DatasetVersion, Principal
from aimaas.errors import InvalidInput
from aimaas.schemas import (
    DatasetDetail,
    DatasetPublic,
    DatasetStats,
    DatasetVersionPublic,
    Page,
    PreviewPage,
    SplitCreate,
    SplitPublic,
)

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])

Name = Annotated[str, Path(max_length=128, description="dataset name")]
VersionRef = Annotated[str, Path(max_length=20, description="a version number or 'latest'")]


def parse_version(ref: str | int | None) -> int | None:
    if ref is None or ref == "latest":
        return None
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        return int(ref)
    raise InvalidInput(f"version must be a number or 'latest', not {str(ref)[:20]!r}", param="version")


def version_public(v: DatasetVersion, dataset: str, created: bool = True) -> DatasetVersionPublic:
    return DatasetVersionPublic(
        id=v.id,
        dataset=dataset,
        version=v.version,
        format=v.format,
        sha256=v.sha256,
        size_bytes=v.size_bytes,
        filename=v.filename,
        num_rows=v.num_rows,
        columns=v.schema,  # type: ignore[arg-type]
        target_suggestion=v.target_suggestion,
        created_at=v.created_at,
        created=created,
    )


def dataset_public(d: Dataset) -> DatasetPublic:
    return DatasetPublic(id=d.id, name=d.name, latest_version=d.latest_version, created_at=d.created_at)


def split_public(s: DatasetSplit, dataset: str, version: int) -> SplitPublic:
    return SplitPublic(
        id=s.id,
        dataset=dataset,
        version=version,
        seed=s.seed,
        fractions=dict(zip(("train", "validation", "test"), s.fractions, strict=True)),
        stratify_by=s.stratify_by,
        counts=s.counts,
        created_at=s.created_at,
    )


@router.post(
    "/{name}/versions",
    status_code=201,
    response_model=DatasetVersionPublic,
    summary="Upload a file as a new version (raw body or multipart field 'file')",
    openapi_extra=upload_body("format"),
)
async def upload_version(
    request: Request,
    response: Response,
    name: Name,
    services: ServicesDep,
    filename: Annotated[str | None, Query(max_length=255)] = None,
    format: Annotated[str | None, Query(max_length=20)] = None,
    principal: Principal = Write,
) -> DatasetVersionPublic:
    datasets = services.datasets
    with datasets.stage(name) as staged:
        received = await receive_upload(request, staged, staged.max_bytes)
        version, created = await run_in_threadpool(
            datasets.ingest,
            principal,
            name,
            staged,
            filename=received.filename or filename or "upload",
            format_hint=received.fields.get("format") or format,
        )
    if not created:
        response.status_code = 200
    return version_public(version, name, created)


@router.get("", response_model=Page[DatasetPublic])
def list_datasets(services: ServicesDep, paging: Annotated[Paging, Depends()], principal: Principal = Read) -> dict:
    items = services.datasets.list_datasets(principal, limit=paging.fetch, after=paging.cursor)
    return paging.page(items, dataset_public)


@router.get("/{name}", response_model=DatasetDetail)
def get_dataset(name: Name, services: ServicesDep, principal: Principal = Read) -> DatasetDetail:
    dataset, versions = services.datasets.get(principal, name)
    return DatasetDetail(**dataset_public(dataset).model_dump(), versions=[version_public(v, name) for v in versions])


@router.get("/{name}/versions", response_model=Page[DatasetVersionPublic])
def list_versions(name: Name, services: ServicesDep, principal: Principal = Read) -> dict:
    versions = services.datasets.versions(principal, name)
    return {"items": [version_public(v, name) for v in versions], "next_cursor": None}


@router.get("/{name}/versions/{version}", response_model=DatasetVersionPublic)
def get_version(
    name: Name, version: VersionRef, services: ServicesDep, principal: Principal = Read
) -> DatasetVersionPublic:
    return version_public(services.datasets.version(principal, name, parse_version(version)), name)


@router.get("/{name}/versions/{version}/preview", response_model=PreviewPage)
def preview(
    name: Name,
    version: VersionRef,
    services: ServicesDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    principal: Principal = Read,
) -> PreviewPage:
    ver, columns, rows = services.datasets.preview(principal, name, parse_version(version), offset=offset, limit=limit)
    return PreviewPage(
        dataset=name,
        version=ver.version,
        columns=columns,
        rows=rows,
        offset=offset,
        limit=limit,
        total_rows=ver.num_rows,
    )


@router.get("/{name}/versions/{version}/stats", response_model=DatasetStats)
def stats(name: Name, version: VersionRef, services: ServicesDep, principal: Principal = Read) -> DatasetStats:
    ver = services.datasets.version(principal, name, parse_version(version))
    return DatasetStats(
        dataset=name,
        version=ver.version,
        num_rows=ver.num_rows,
        exact=bool(ver.stats.get("exact", True)),
        columns=ver.stats.get("columns", []),
    )


@router.get("/{name}/versions/{version}/download", response_class=StreamingResponse)
def download(name: Name, version: VersionRef, services: ServicesDep, principal: Principal = Read) -> StreamingResponse:
    ver, chunks = services.datasets.open_download(principal, name, parse_version(version))
    filename = services.datasets.download_filename(ver, name)
    return StreamingResponse(
        iterate_in_threadpool(chunks),
        media_type="application/octet-stream",
        headers={
            "content-disposition": f'attachment; filename="{filename}"',
            "content-length": str(ver.size_bytes),
            "x-content-sha256": ver.sha256,
        },
    )


@router.post("/{name}/splits", status_code=201, response_model=SplitPublic)
def create_split(
    name: Name, body: SplitCreate, response: Response, services: ServicesDep, principal: Principal = Write
) -> SplitPublic:
    ver, split, created = services.datasets.split(
        principal,
        name,
        body.version,
        fractions=(body.train, body.validation, body.test),
        seed=body.seed,
        stratify_by=body.stratify_by,
    )
    if not created:
        response.status_code = 200
    return split_public(split, name, ver.version)


@router.get("/{name}/versions/{version}/splits", response_model=Page[SplitPublic])
def list_splits(name: Name, version: VersionRef, services: ServicesDep, principal: Principal = Read) -> dict:
    ver, splits = services.datasets.splits(principal, name, parse_version(version))
    return {"items": [split_public(s, name, ver.version) for s in splits], "next_cursor": None}


@router.get("/{name}/versions/{version}/splits/{split_id}/download", response_class=StreamingResponse)
def download_split(
    name: Name,
    version: VersionRef,
    split_id: Annotated[str, Path(max_length=100)],
    services: ServicesDep,
    principal: Principal = Read,
) -> StreamingResponse:
    chunks = services.datasets.split_csv(principal, name, parse_version(version), split_id)
    return StreamingResponse(
        iterate_in_threadpool(chunks),
        media_type="text/csv",
        headers={"content-disposition": f'attachment; filename="{name}-split-{split_id}.csv"'},
    )


@router.delete("/{name}", status_code=204, response_class=Response)
def delete_dataset(name: Name, services: ServicesDep, principal: Principal = Write) -> Response:
    services.datasets.delete(principal, name)
    return Response(status_code=204)
