"""The SDK's Server-Sent Events reader and job streaming over a fake transport."""

from __future__ import annotations

import json

import httpx
import pytest

from aimaas.errors import NotFound
from aimaas.sdk import Client
from aimaas.sdk._jobs import SseParser


def event(seq: int, type_: str = "log", **payload: object) -> str:
    data = {"job_id": "job_1", "seq": seq, "time": "2024-01-01T00:00:00Z", "type": type_, "payload": payload}
    return f"id: {seq}\nevent: {type_}\ndata: {json.dumps(data)}\n\n"


def test_parser_joins_data_lines_and_skips_comments() -> None:
    parser = SseParser()
    lines = [": keep-alive", "", "event: log", "data: a", "data:b", "id: 3", ""]
    assert [parser.feed(line) for line in lines] == [None, None, None, None, None, None, ("log", "a\nb")]
    assert parser.feed("data: plain") is None and parser.feed("") == ("message", "plain")


def test_stream_yields_events_until_end() -> None:
    body = ": hello\n\n" + event(1, message="hi") + event(2, "state", state="succeeded") + "event: end\ndata: {}\n\n"

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/jobs/job_1/stream" and request.url.params["after_seq"] == "0"
        return httpx.Response(200, text=body + event(3), headers={"content-type": "text/event-stream"})

    with Client("http://test", api_key="k", transport=httpx.MockTransport(handler)) as client:
        got = list(client.jobs.stream("job_1"))
    assert [(e.seq, e.type) for e in got] == [(1, "log"), (2, "state")]
    assert got[0].payload == {"message": "hi"}


def test_stream_raises_the_server_error() -> None:
    error = {"error": {"message": "job not found", "type": "not_found_error", "code": "not_found", "param": None}}
    transport = httpx.MockTransport(lambda request: httpx.Response(404, json=error))
    with Client("http://test", api_key="k", transport=transport) as client, pytest.raises(NotFound, match="job not"):
        list(client.jobs.stream("job_1"))


def test_create_sends_the_idempotency_key() -> None:
    seen: list[httpx.Request] = []
    job = {
        "id": "job_1", "kind": "k", "entrypoint": "a.b:c", "params": {}, "state": "queued", "priority": 0,
        "progress": 0, "created_at": "2024-01-01T00:00:00Z",
    }  # fmt: skip

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json=job)

    with Client("http://test", api_key="k", transport=httpx.MockTransport(handler)) as client:
        assert client.jobs.create("a.b:c", kind="k", idempotency_key="once").id == "job_1"
    assert seen[0].headers["idempotency-key"] == "once"
    assert json.loads(seen[0].content) == {"kind": "k", "entrypoint": "a.b:c", "params": {}, "priority": 0}
