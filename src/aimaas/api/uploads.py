"""Stream an upload body into a :class:`StagedUpload` without holding it in memory.

Two body forms are accepted (see docs/api.md): raw bytes, or ``multipart/form-data`` with the file in
the field ``file``. Starlette's own form parser spools files to a temporary file first and has no size
cap for file parts; parsing the multipart stream ourselves with python-multipart's low-level parser
writes each byte once, straight into the capped, hashed staging file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from aimaas.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from aimaas.services.datasets.staging import StagedUpload

__all__ = ["ReceivedUpload", "receive_upload", "upload_body"]


def upload_body(*form_fields: str) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of an upload route: the raw bytes, or multipart with ``file`` and ``form_fields``
    (what :func:`receive_upload` accepts)."""
    properties: dict[str, Any] = {"file": {"type": "string", "format": "binary"}}
    properties.update({name: {"type": "string"} for name in form_fields})
    return {"requestBody": {"content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {"type": "object", "properties": properties, "required": ["file"]}},
    }, "required": True}}

_MAX_FIELD_BYTES = 1024


@dataclass
class ReceivedUpload:
    filename: str | None = None
    fields: dict[str, str] = field(default_factory=dict)


class _MultipartSink:
    """Callbacks for python-multipart: the ``file`` part goes to the staged upload, small fields to memory."""

    def __init__(self, boundary: bytes, staged: StagedUpload, received: ReceivedUpload) -> None:
        self.staged = staged
        self.received = received
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.headers: dict[bytes, bytes] = {}
        self.part_name: str | None = None
        self.part_is_file = False
        self.field_buf = bytearray()
        self.files_seen = 0
        self.error: Exception | None = None
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self.on_part_begin,
                "on_header_field": lambda d, s, e: self.header_field.extend(d[s:e]),
                "on_header_value": lambda d, s, e: self.header_value.extend(d[s:e]),
                "on_header_end": self.on_header_end,
                "on_headers_finished": self.on_headers_finished,
                "on_part_data": self.on_part_data,
                "on_part_end": self.on_part_end,
            },
        )

    def on_part_begin(self) -> None:
        self.headers = {}
        self.part_name = None
        self.part_is_file = False
        self.field_buf = bytearray()

    def on_header_end(self) -> None:
        self.headers[bytes(self.header_field).lower()] = bytes(self.header_value)
        self.header_field.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.part_name = options.get(b"name", b"").decode("utf-8", "replace")
        if self.part_name == "file":
            self.files_seen += 1
            if self.files_seen > 1:
                raise BadRequest("send exactly one file in the form field 'file'", param="file")
            self.part_is_file = True
            self.received.filename = options.get(b"filename", b"upload").decode("utf-8", "replace")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part_is_file:
            self.staged.write(data[start:end])
        else:
            self.field_buf.extend(data[start:end])
            if len(self.field_buf) > _MAX_FIELD_BYTES:
                raise BadRequest(f"form field {self.part_name!r} is too long", param=self.part_name)

    def on_part_end(self) -> None:
        if not self.part_is_file and self.part_name:
            self.received.fields[self.part_name] = self.field_buf.decode("utf-8", "replace")


async def receive_upload(request: Request, staged: StagedUpload, max_bytes: int) -> ReceivedUpload:
    """Read the request body into ``staged``; return the client's file name and form fields."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes + 64 * 1024:
        raise PayloadTooLarge(
            f"upload of {int(length):,} bytes exceeds the {max_bytes:,}-byte limit (AIMAAS_MAX_UPLOAD_BYTES)",
            param="file",
        )
    content_type = request.headers.get("content-type", "application/octet-stream")
    media, options = parse_options_header(content_type)
    received = ReceivedUpload()
    if b"pickle" in media:
        raise UnsupportedMediaType("pickle bodies are never accepted; upload CSV, JSONL, Parquet, text or a zip")
    if media != b"multipart/form-data":
        async for chunk in request.stream():
            staged.write(chunk)
        return received
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart/form-data without a boundary", param="file")
    sink = _MultipartSink(boundary, staged, received)
    try:
        async for chunk in request.stream():
            sink.parser.write(chunk)
        sink.parser.finalize()
    except MultipartParseError as exc:
        raise BadRequest(f"malformed multipart body: {exc}", param="file") from exc
    if sink.files_seen == 0:
        raise BadRequest("no file in the form: send it in the field 'file'", param="file")
    return received
