"""The model registry: models, versions (by number, alias or ``latest``), cards, reports, plots, downloads,
aliases, status, comparison and import of external models."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import iterate_in_threadpool, run_in_threadpool
from fastapi.responses import StreamingResponse

from aimaas.api.deps import Paging, Read, ServicesDep, Write
from aimaas.api.uploads import receive_upload, upload_body
from aimaas.domain import ModelAlias, ModelVersion, Principal, RegisteredModel
from aimaas.schemas import (
    AliasSet,
    ModelComparison,
    ModelDetail,
    ModelPublic,
    ModelVersionPublic,
    Page,
    VersionStatusSet,
)
from aimaas.services.registry import outputs

router = APIRouter(prefix="/api/v1", tags=["models"])

Name = Annotated[str, Path(max_length=128, description="model name")]
Selector = Annotated[str, Path(max_length=64, description="a version number, an alias, or 'latest'")]
AliasName = Annotated[str, Path(max_length=64, description="alias")]


def version_public(v: ModelVersion, name: str, aliases: list[ModelAlias] | None = None) -> ModelVersionPublic:
    out = outputs(v)
    lineage = {k: value for k, value in v.lineage.items() if k != "outputs"}
    return ModelVersionPublic(
        model=name, version=v.version, ref=f"{name}/{v.version}", status=v.status,  # type: ignore[arg-type]
        task=v.task, format=v.format, sha256=v.sha256, size_bytes=v.size_bytes,  # type: ignore[arg-type]
        aliases=sorted(a.alias for a in aliases or [] if a.version == v.version),
        signature=v.signature, metrics=v.metrics, params=v.params, lineage=lineage,
        files=sorted(out.get("files") or {}), plots=sorted(out.get("plots") or {}), created_at=v.created_at,
    )


def model_public(m: RegisteredModel, aliases: list[ModelAlias]) -> ModelPublic:
    return ModelPublic(name=m.name, description=m.description, latest_version=m.latest_version,
                       aliases={a.alias: a.version for a in aliases}, created_at=m.created_at)


@router.get("/models", response_model=Page[ModelPublic])
def list_models(services: ServicesDep, paging: Annotated[Paging, Depends()], principal: Principal = Read) -> dict:
    registry = services.registry
    items = registry.list_models(principal, limit=paging.fetch, after=paging.cursor)
    return paging.page(items, lambda m: model_public(m, registry.aliases(principal, m.name)))


@router.get("/models/{name}", response_model=ModelDetail)
def get_model(name: Name, services: ServicesDep, principal: Principal = Read) -> ModelDetail:
    model, versions, aliases = services.registry.get(principal, name)
    return ModelDetail(**model_public(model, aliases).model_dump(),
                       versions=[version_public(v, name, aliases) for v in versions])


@router.delete("/models/{name}", status_code=204, response_class=Response)
def delete_model(name: Name, services: ServicesDep, principal: Principal = Write) -> Response:
    services.registry.delete(principal, name)
    return Response(status_code=204)


@router.get("/models/{name}/versions/{selector}", response_model=ModelVersionPublic)
def get_version(name: Name, selector: Selector, services: ServicesDep,
                principal: Principal = Read) -> ModelVersionPublic:
    version = services.registry.version(principal, name, selector)
    return version_public(version, name, services.registry.aliases(principal, name))


@router.patch("/models/{name}/versions/{selector}", response_model=ModelVersionPublic,
              summary="Archive or restore a version")
def set_status(name: Name, selector: Selector, body: VersionStatusSet, services: ServicesDep,
               principal: Principal = Write) -> ModelVersionPublic:
    version = services.registry.set_status(principal, name, selector, body.status)
    return version_public(version, name, services.registry.aliases(principal, name))


@router.get("/models/{name}/versions/{selector}/card", response_class=Response,
            responses={200: {"content": {"text/markdown": {}}}}, summary="The model card (Markdown)")
def get_card(name: Name, selector: Selector, services: ServicesDep, principal: Principal = Read) -> Response:
    text = services.registry.card(principal, name, selector)
    return Response(text, media_type="text/markdown; charset=utf-8")


@router.get("/models/{name}/versions/{selector}/report", summary="The evaluation report (plot data)")
def get_report(name: Name, selector: Selector, services: ServicesDep, principal: Principal = Read) -> dict:
    return services.registry.report(principal, name, selector)


@router.get("/models/{name}/versions/{selector}/plots/{plot}.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}})
def get_plot(name: Name, selector: Selector, plot: Annotated[str, Path(max_length=64)], services: ServicesDep,
             principal: Principal = Read) -> Response:
    return Response(services.registry.plot(principal, name, selector, plot), media_type="image/png",
                    headers={"cache-control": "private, max-age=3600"})


@router.get("/models/{name}/versions/{selector}/download", response_class=StreamingResponse,
            summary="Download the model file, or one of the version's files with ?file=")
async def download(name: Name, selector: Selector, services: ServicesDep,
                   file: Annotated[str | None, Query(max_length=128)] = None,
                   principal: Principal = Read) -> StreamingResponse:
    found = await run_in_threadpool(services.registry.open_file, principal, name, selector, file)
    return StreamingResponse(
        iterate_in_threadpool(found.chunks), media_type=found.media_type,
        headers={"content-disposition": f'attachment; filename="{found.filename}"',
                 "content-length": str(found.size_bytes)},
    )


@router.put("/models/{name}/aliases/{alias}", response_model=ModelPublic, summary="Point an alias at a version")
def set_alias(name: Name, alias: AliasName, body: AliasSet, services: ServicesDep,
              principal: Principal = Write) -> ModelPublic:
    services.registry.set_alias(principal, name, alias, body.version)
    model, _, aliases = services.registry.get(principal, name)
    return model_public(model, aliases)


@router.delete("/models/{name}/aliases/{alias}", status_code=204, response_class=Response)
def delete_alias(name: Name, alias: AliasName, services: ServicesDep, principal: Principal = Write) -> Response:
    services.registry.delete_alias(principal, name, alias)
    return Response(status_code=204)


@router.get("/compare", response_model=ModelComparison, summary="Compare 2-10 versions side by side")
def compare(services: ServicesDep, ref: Annotated[list[str], Query(max_length=10)],
            principal: Principal = Read) -> ModelComparison:
    versions, table, same, notes = services.registry.compare(principal, ref)
    return ModelComparison(
        versions=[version_public(v, ref_name(r)) for v, r in zip(versions, ref, strict=True)],
        metrics=table, same_test_split=same, notes=notes,
    )


def ref_name(ref: str) -> str:
    return ref.split("@", 1)[0].split("/", 1)[0]


@router.post(
    "/models/{name}/import",
    status_code=201,
    response_model=ModelVersionPublic,
    summary="Import an ONNX file, a GGUF file or a zipped Hugging Face directory (safetensors) as a new version",
    openapi_extra=upload_body("task"),
)
async def import_model(
    request: Request,
    name: Name,
    services: ServicesDep,
    filename: Annotated[str | None, Query(max_length=255)] = None,
    task: Annotated[str | None, Query(max_length=64)] = None,
    description: Annotated[str | None, Query(max_length=500)] = None,
    principal: Principal = Write,
) -> ModelVersionPublic:
    registry = services.registry
    with registry.stage(name) as staged:
        received = await receive_upload(request, staged, staged.max_bytes)
        version = await run_in_threadpool(
            registry.import_model, principal, name, staged, received.filename or filename or "model",
            task=task or received.fields.get("task"), description=description,
        )
    return version_public(version, name, await run_in_threadpool(registry.aliases, principal, name))
