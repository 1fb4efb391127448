"""The model registry in the SDK: ``client.models`` (sync) and ``aclient.models`` (async).

A *ref* names one version in one string: ``name`` (the latest), ``name/3`` (version 3) or ``name@prod`` (the
version alias ``prod`` points at). Methods taking a ``ref`` also accept a bare name with ``sel`` where noted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aimaas.errors import InvalidInput
from aimaas.schemas import ModelComparison, ModelDetail, ModelPublic, ModelVersionPublic, Page
from aimaas.sdk import _routes as r
from aimaas.sdk._archive import zipped_directory
from aimaas.sdk._common import aiterate_pages, iterate_pages, upload_timeout
from aimaas.sdk._http import ProgressCallback, aiter_file, iter_file

if TYPE_CHECKING:
    from aimaas.sdk._async import AsyncClient
    from aimaas.sdk._sync import Client

__all__ = ["AsyncModels", "Models"]

PathLike = str | os.PathLike[str]
Status = Literal["ready", "archived"]


def _compare_call(refs: Sequence[str]) -> r.Call[ModelComparison]:
    if isinstance(refs, str) or not isinstance(refs, Sequence):
        raise InvalidInput("compare takes a list of 2 to 10 model refs, e.g. ['iris/1', 'iris@prod']", param="refs")
    for ref in refs:
        r.split_ref(ref)  # a malformed ref fails here, before any request
    return r.model_compare(list(refs))


def _upload_headers(total: int) -> dict[str, str]:
    return {"Content-Type": "application/octet-stream", "Content-Length": str(total)}


def _import_source(path: PathLike) -> Path:
    source = Path(path).expanduser()
    if not source.exists():
        raise InvalidInput(f"{source} does not exist; give an .onnx or .gguf file or a model folder", param="path")
    return source


class Models:
    """Registered models of your tenant: versions, cards, reports, plots, downloads, aliases, imports."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> Page[ModelPublic]:
        """One page of registered models; pass ``page.next_cursor`` back as ``cursor`` for the next one."""
        return self._c._run(r.model_list(limit, cursor))

    def iter_all(self, *, page_size: int = 100) -> Iterator[ModelPublic]:
        """Every registered model, following cursors page after page."""
        return iterate_pages(lambda cursor: self.list(limit=page_size, cursor=cursor))

    def get(self, name: str) -> ModelDetail:
        """A model with its aliases and all its versions."""
        return self._c._run(r.model_get(name))

    def version(self, ref: str, sel: int | str | None = None) -> ModelVersionPublic:
        """One version: ``version("iris/2")``, ``version("iris@prod")`` or ``version("iris", 2)``."""
        return self._c._run(r.model_version(*r.split_ref(ref, sel)))

    def card(self, ref: str) -> str:
        """The version's model card (Markdown)."""
        return self._c._run(r.model_card(*r.split_ref(ref)))

    def report(self, ref: str) -> dict[str, Any]:
        """The evaluation detail: confusion matrix, curves, importances, the search's trials."""
        return self._c._run(r.model_report(*r.split_ref(ref)))

    def plot(self, ref: str, plot: str, dest: PathLike) -> Path:
        """Save the PNG ``plot`` (one of ``version(ref).plots``) to ``dest`` (a file, or a folder) and return it."""
        name, sel = r.split_ref(ref)
        return self._c._download(r.plot_path(name, sel, plot), dest, f"{plot}.png", None)

    def download(
        self, ref: str, dest: PathLike, *, file: str | None = None, progress: ProgressCallback | None = None
    ) -> Path:
        """Stream the model file (or ``file``, one of ``version(ref).files``) to ``dest`` (a file, or a folder
        to put it in, named by the server); ``progress(done, total)``. Returns the saved path."""
        name, sel = r.split_ref(ref)
        params = {"file": file} if file else None
        default = file or f"{name}-{sel}"
        return self._c._download(r.model_download_path(name, sel), dest, default, progress, params=params)

    def set_alias(self, name: str, alias: str, version: int) -> ModelPublic:
        """Point ``alias`` (``prod``, ``staging``…) at ``version``, creating or moving it."""
        return self._c._run(r.alias_set(name, alias, version))

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias (the version it pointed at stays)."""
        self._c._run(r.alias_delete(name, alias))

    def set_status(self, ref: str, status: Status) -> ModelVersionPublic:
        """Archive (``"archived"``) or restore (``"ready"``) a version."""
        return self._c._run(r.model_status(*r.split_ref(ref), status))

    def delete(self, name: str) -> None:
        """Delete the model with all its versions (409 while an endpoint uses it)."""
        self._c._run(r.model_delete(name))

    def compare(self, refs: Sequence[str]) -> ModelComparison:
        """2 to 10 versions side by side: metrics (one value per version) and whether the test splits match."""
        return self._c._run(_compare_call(refs))

    def import_file(
        self,
        name: str,
        path: PathLike,
        *,
        task: str | None = None,
        description: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> ModelVersionPublic:
        """Register an ``.onnx`` or ``.gguf`` file, or a Hugging Face model folder (safetensors), as a new
        version of ``name``. A folder is zipped first (hidden entries left out, links refused). The file
        streams 1 MiB at a time; ``progress(sent, total)``."""
        source = _import_source(path)
        with contextlib.ExitStack() as stack:
            file = stack.enter_context(zipped_directory(source)) if source.is_dir() else source
            total = file.stat().st_size
            return self._c._send(
                "POST",
                r.model_import_path(name),
                r.parse_model_version,
                params=r.import_params(file.name, task, description),
                content=iter_file(file, total, progress),
                headers=_upload_headers(total),
                timeout=upload_timeout(self._c.timeout),
            )


class AsyncModels:
    """Registered models of your tenant (async twin of :class:`Models`)."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def list(self, *, limit: int | None = None, cursor: str | None = None) -> Page[ModelPublic]:
        """One page of registered models; pass ``page.next_cursor`` back as ``cursor`` for the next one."""
        return await self._c._run(r.model_list(limit, cursor))

    def iter_all(self, *, page_size: int = 100) -> AsyncIterator[ModelPublic]:
        """Every registered model, following cursors page after page."""
        return aiterate_pages(lambda cursor: self.list(limit=page_size, cursor=cursor))

    async def get(self, name: str) -> ModelDetail:
        return await self._c._run(r.model_get(name))

    async def version(self, ref: str, sel: int | str | None = None) -> ModelVersionPublic:
        return await self._c._run(r.model_version(*r.split_ref(ref, sel)))

    async def card(self, ref: str) -> str:
        return await self._c._run(r.model_card(*r.split_ref(ref)))

    async def report(self, ref: str) -> dict[str, Any]:
        return await self._c._run(r.model_report(*r.split_ref(ref)))

    async def plot(self, ref: str, plot: str, dest: PathLike) -> Path:
        name, sel = r.split_ref(ref)
        return await self._c._download(r.plot_path(name, sel, plot), dest, f"{plot}.png", None)

    async def download(
        self, ref: str, dest: PathLike, *, file: str | None = None, progress: ProgressCallback | None = None
    ) -> Path:
        name, sel = r.split_ref(ref)
        params = {"file": file} if file else None
        default = file or f"{name}-{sel}"
        return await self._c._download(r.model_download_path(name, sel), dest, default, progress, params=params)

    async def set_alias(self, name: str, alias: str, version: int) -> ModelPublic:
        return await self._c._run(r.alias_set(name, alias, version))

    async def delete_alias(self, name: str, alias: str) -> None:
        await self._c._run(r.alias_delete(name, alias))

    async def set_status(self, ref: str, status: Status) -> ModelVersionPublic:
        return await self._c._run(r.model_status(*r.split_ref(ref), status))

    async def delete(self, name: str) -> None:
        await self._c._run(r.model_delete(name))

    async def compare(self, refs: Sequence[str]) -> ModelComparison:
        return await self._c._run(_compare_call(refs))

    async def import_file(
        self,
        name: str,
        path: PathLike,
        *,
        task: str | None = None,
        description: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> ModelVersionPublic:
        """See :meth:`Models.import_file`; zipping a folder runs in a thread so the event loop keeps going."""
        source = _import_source(path)
        with contextlib.ExitStack() as stack:
            file = source
            if source.is_dir():
                file = await asyncio.to_thread(stack.enter_context, zipped_directory(source))
            total = file.stat().st_size
            return await self._c._send(
                "POST",
                r.model_import_path(name),
                r.parse_model_version,
                params=r.import_params(file.name, task, description),
                content=aiter_file(file, total, progress),
                headers=_upload_headers(total),
                timeout=upload_timeout(self._c.timeout),
            )
