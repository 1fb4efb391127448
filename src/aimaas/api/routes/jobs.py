"""Jobs: queue (operator-level: raw entrypoints), list, read, follow (Server-Sent Events) and cancel."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from aimaas.api.deps import Admin, Paging, Read, ServicesDep, Write
from aimaas.domain import Job, JobEvent, JobState, Principal, Scope
from aimaas.domain.jobs import is_terminal
from aimaas.errors import Forbidden, InvalidInput
from aimaas.schemas import JobCreate, JobEventList, JobEventPublic, JobPublic, Page
from aimaas.services.jobs import JobService

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])

JobId = Annotated[str, Path(max_length=128, description="job id")]
#: How often a stream looks for new events, and how long it stays silent before a keep-alive comment.
STREAM_POLL_S = 0.25
KEEPALIVE_S = 15.0


def job_public(job: Job) -> JobPublic:
    spec = job.spec
    return JobPublic(
        id=job.id,
        kind=spec.kind,
        entrypoint=spec.entrypoint,
        params=spec.params,
        state=job.state.value,
        priority=job.priority,
        progress=job.progress,
        error=job.error,
        result=job.result,
        resume_from=spec.resume_from,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        cancel_requested_at=job.cancel_requested_at,
    )


def event_public(event: JobEvent) -> JobEventPublic:
    return JobEventPublic(job_id=event.job_id, seq=event.seq, time=event.time, type=event.type, payload=event.payload)


@router.post("", status_code=201, response_model=JobPublic, summary="Queue a job (admin: runs a raw entrypoint)")
def create_job(
    body: JobCreate,
    response: Response,
    services: ServicesDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
    principal: Principal = Admin,
) -> JobPublic:
    job, created = services.jobs.create(principal, body.model_dump(), idempotency_key=idempotency_key or None)
    if not created:
        response.status_code = 200
    return job_public(job)


@router.get("", response_model=Page[JobPublic])
def list_jobs(
    services: ServicesDep,
    paging: Annotated[Paging, Depends()],
    state: Annotated[JobState | None, Query(description="only jobs in this state")] = None,
    principal: Principal = Read,
) -> dict:
    items = services.jobs.list(principal, limit=paging.fetch, after=paging.cursor, state=state)
    return paging.page(items, job_public)


@router.get("/{job_id}", response_model=JobPublic)
def get_job(job_id: JobId, services: ServicesDep, principal: Principal = Read) -> JobPublic:
    return job_public(services.jobs.get(principal, job_id))


@router.get("/{job_id}/events", response_model=JobEventList)
def list_events(
    job_id: JobId,
    services: ServicesDep,
    after_seq: Annotated[int, Query(ge=0, description="only events after this seq")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    principal: Principal = Read,
) -> JobEventList:
    events = services.jobs.events(principal, job_id, after_seq=after_seq, limit=limit)
    more = events[-1].seq if len(events) == limit else None
    return JobEventList(items=[event_public(e) for e in events], next_after_seq=more)


@router.post("/{job_id}/cancel", response_model=JobPublic)
def cancel_job(job_id: JobId, services: ServicesDep, principal: Principal = Write) -> JobPublic:
    return job_public(services.jobs.cancel(principal, job_id))


@router.post("/{job_id}/retry", status_code=201, response_model=JobPublic,
             summary="Run an ended job again, resuming from its checkpoint (training jobs: write scope)")
def retry_job(job_id: JobId, services: ServicesDep, principal: Principal = Write) -> JobPublic:
    job = services.jobs.get(principal, job_id)
    if job.spec.kind == "train":
        return job_public(services.training.retry(principal, job_id))
    if not principal.can(Scope.ADMIN):  # a raw entrypoint job is an operator-level power, as on create
        raise Forbidden("retrying this kind of job needs the admin scope", code="insufficient_scope")
    return job_public(services.jobs.retry(principal, job_id))


def _start_seq(after_seq: int, last_event_id: str | None) -> int:
    if last_event_id is None or not last_event_id.strip():
        return after_seq
    if not last_event_id.strip().isdigit():
        raise InvalidInput("Last-Event-ID must be the seq of an event", param="Last-Event-ID")
    return max(after_seq, int(last_event_id))


@router.get(
    "/{job_id}/stream",
    response_class=StreamingResponse,
    summary="Follow a job's events as Server-Sent Events until it ends",
)
async def stream_events(
    request: Request,
    job_id: JobId,
    services: ServicesDep,
    after_seq: Annotated[int, Query(ge=0)] = 0,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
    principal: Principal = Read,
) -> StreamingResponse:
    start = _start_seq(after_seq, last_event_id)
    await run_in_threadpool(services.jobs.get, principal, job_id)  # 404 before the stream starts
    return StreamingResponse(
        _follow(request, services.jobs, principal, job_id, start),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


async def _follow(
    request: Request, jobs: JobService, principal: Principal, job_id: str, seq: int
) -> AsyncIterator[str]:
    """Replay the events after ``seq``, then poll for new ones; end with an ``end`` event carrying the job
    once it is terminal and every event is out, or when the client leaves or the server drains."""
    quiet_since = time.monotonic()
    while True:
        job = await run_in_threadpool(jobs.get, principal, job_id)
        events = await run_in_threadpool(jobs.events, principal, job_id, after_seq=seq, limit=1000)
        for event in events:
            seq = event.seq
            yield f"id: {seq}\nevent: {event.type}\ndata: {event_public(event).model_dump_json()}\n\n"
        if events:
            quiet_since = time.monotonic()
            continue  # drain a backlog before looking at the state again
        if is_terminal(job.state):
            yield f"event: end\ndata: {json.dumps(job_public(job).model_dump(mode='json'))}\n\n"
            return
        if await request.is_disconnected() or getattr(request.app.state, "draining", False):
            return
        if time.monotonic() - quiet_since >= KEEPALIVE_S:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        await asyncio.sleep(STREAM_POLL_S)
