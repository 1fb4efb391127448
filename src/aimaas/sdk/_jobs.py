"""Jobs in the SDK: ``client.jobs`` (sync) and ``aclient.jobs`` (async), with a Server-Sent Events reader."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from aimaas.schemas import JobEventList, JobEventPublic, JobPublic, Page
from aimaas.sdk import _routes as r
from aimaas.sdk._http import error_from_response, transport_error

if TYPE_CHECKING:
    from aimaas.sdk._async import AsyncClient
    from aimaas.sdk._sync import Client

__all__ = ["AsyncJobs", "Jobs", "SseParser"]

# A followed job may stay quiet for long; the server sends a keep-alive comment every 15 s.
_STREAM_TIMEOUT = httpx.Timeout(60.0, read=120.0)


@dataclass
class SseParser:
    """Turns ``text/event-stream`` lines into ``(event, data)`` pairs (``event`` defaults to ``message``)."""

    _event: str = ""
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> tuple[str, str] | None:
        """Give one line (without its newline); returns a finished event at a blank line, else None."""
        if not line:
            if not self._data and not self._event:
                return None
            done = (self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return done
        if line.startswith(":"):
            return None  # a comment (keep-alive)
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None


_ENDED = frozenset({"succeeded", "failed", "cancelled"})
_FIRST_POLL_S, _MAX_POLL_S = 0.1, 2.0


def _next_poll(delay: float, deadline: float | None, job_id: str, timeout: float | None) -> float:
    """How long to sleep before the next look (growing to 2 s), or TimeoutError once ``timeout`` is spent."""
    if deadline is None:
        return delay
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(
            f"job {job_id} has not ended after {timeout:g} s; it keeps running (cancel it with "
            f"`aimaas jobs cancel {job_id}`), or wait longer"
        )
    return min(delay, left)


def _stream_request(job_id: str, after_seq: int) -> tuple[str, dict[str, Any]]:
    return f"{r.job_path(job_id)}/stream", {"after_seq": after_seq}


def _create_args(idempotency_key: str | None) -> dict[str, str]:
    return {"Idempotency-Key": idempotency_key} if idempotency_key else {}


class Jobs:
    """Jobs of your tenant: queue one (admin key), list, read, follow its events, cancel it."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(
        self,
        entrypoint: str,
        *,
        kind: str = "custom",
        params: dict[str, Any] | None = None,
        priority: int = 0,
        resume_from: str | None = None,
        idempotency_key: str | None = None,
    ) -> JobPublic:
        """Queue ``entrypoint`` (``package.module:function`` in an allowed package); a retry with the same
        ``idempotency_key`` returns the same job."""
        call = r.job_create(kind, entrypoint, params, priority, resume_from)
        return self._c._send(call.method, call.path, call.parse, json=call.json, headers=_create_args(idempotency_key))

    def list(self, *, state: str | None = None, limit: int | None = None, cursor: str | None = None) -> Page[JobPublic]:
        """One page of jobs, newest last; ``state`` filters (queued, running, succeeded, failed, cancelled)."""
        return self._c._run(r.job_list(state, limit, cursor))

    def get(self, job_id: str) -> JobPublic:
        return self._c._run(r.job_get(job_id))

    def events(self, job_id: str, *, after_seq: int = 0, limit: int | None = None) -> JobEventList:
        """Stored events after ``after_seq`` (logs, metrics, progress, state changes)."""
        return self._c._run(r.job_events(job_id, after_seq, limit))

    def cancel(self, job_id: str) -> JobPublic:
        """Ask to stop the job; a queued job ends at once, a running one within seconds."""
        return self._c._run(r.job_cancel(job_id))

    def retry(self, job_id: str) -> JobPublic:
        """Run an ended job again as a new job that resumes from its checkpoint (a training job continues from
        its last saved epoch)."""
        return self._c._run(r.job_retry(job_id))

    def wait(self, job_id: str, *, timeout: float | None = None) -> JobPublic:
        """Return the job once it has ended (succeeded, failed or cancelled: check ``.state``, ``.error``,
        ``.result``). Polls every 0.1-2 s; raises ``TimeoutError`` after ``timeout`` seconds (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = _FIRST_POLL_S
        while (job := self.get(job_id)).state not in _ENDED:
            time.sleep(_next_poll(delay, deadline, job_id, timeout))
            delay = min(delay * 1.5, _MAX_POLL_S)
        return job

    def stream(self, job_id: str, *, after_seq: int = 0) -> Iterator[JobEventPublic]:
        """Yield the job's events after ``after_seq`` as they happen; ends once the job has ended."""
        path, params = _stream_request(job_id, after_seq)
        parser = SseParser()
        try:
            with self._c._http.stream("GET", path, params=params, timeout=_STREAM_TIMEOUT) as response:
                if response.is_error:
                    response.read()
                    raise error_from_response(response)
                for line in response.iter_lines():
                    done = parser.feed(line)
                    if done is None:
                        continue
                    if done[0] == "end":
                        return
                    yield JobEventPublic.model_validate_json(done[1])
        except httpx.TransportError as exc:
            raise transport_error(self._c.url, exc) from None


class AsyncJobs:
    """Jobs of your tenant (async twin of :class:`Jobs`)."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(
        self,
        entrypoint: str,
        *,
        kind: str = "custom",
        params: dict[str, Any] | None = None,
        priority: int = 0,
        resume_from: str | None = None,
        idempotency_key: str | None = None,
    ) -> JobPublic:
        call = r.job_create(kind, entrypoint, params, priority, resume_from)
        return await self._c._send(
            call.method, call.path, call.parse, json=call.json, headers=_create_args(idempotency_key)
        )

    async def list(
        self, *, state: str | None = None, limit: int | None = None, cursor: str | None = None
    ) -> Page[JobPublic]:
        return await self._c._run(r.job_list(state, limit, cursor))

    async def get(self, job_id: str) -> JobPublic:
        return await self._c._run(r.job_get(job_id))

    async def events(self, job_id: str, *, after_seq: int = 0, limit: int | None = None) -> JobEventList:
        return await self._c._run(r.job_events(job_id, after_seq, limit))

    async def cancel(self, job_id: str) -> JobPublic:
        return await self._c._run(r.job_cancel(job_id))

    async def retry(self, job_id: str) -> JobPublic:
        """See :meth:`Jobs.retry`."""
        return await self._c._run(r.job_retry(job_id))

    async def wait(self, job_id: str, *, timeout: float | None = None) -> JobPublic:
        """See :meth:`Jobs.wait`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = _FIRST_POLL_S
        while (job := await self.get(job_id)).state not in _ENDED:
            await asyncio.sleep(_next_poll(delay, deadline, job_id, timeout))
            delay = min(delay * 1.5, _MAX_POLL_S)
        return job

    async def stream(self, job_id: str, *, after_seq: int = 0) -> AsyncIterator[JobEventPublic]:
        """Yield the job's events after ``after_seq`` as they happen; ends once the job has ended."""
        path, params = _stream_request(job_id, after_seq)
        parser = SseParser()
        try:
            async with self._c._http.stream("GET", path, params=params, timeout=_STREAM_TIMEOUT) as response:
                if response.is_error:
                    await response.aread()
                    raise error_from_response(response)
                async for line in response.aiter_lines():
                    done = parser.feed(line)
                    if done is None:
                        continue
                    if done[0] == "end":
                        return
                    yield JobEventPublic.model_validate_json(done[1])
        except httpx.TransportError as exc:
            raise transport_error(self._c.url, exc) from None
