"""Shared constants and small helpers of the dataset-processing modules (private)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import pyarrow as pa

from aimaas.errors import AimaasError, InvalidInput

__all__ = [
    "ARCHIVE_FORMATS",
    "FORMATS",
    "TABULAR_FORMATS",
    "TEXT_FORMATS",
    "ReadState",
    "Restart",
    "with_restarts",
    "file_error",
    "prefetch",
]

FORMATS: tuple[str, ...] = ("csv", "tsv", "jsonl", "parquet", "text", "text_zip", "image_zip")
TABULAR_FORMATS = frozenset({"csv", "tsv", "jsonl", "parquet"})
TEXT_FORMATS = frozenset({"csv", "tsv", "jsonl", "text"})  # plain UTF-8 text files
ARCHIVE_FORMATS = frozenset({"text_zip", "image_zip"})

T = TypeVar("T")
KIND_KEY = b"aimaas_kind"  # field metadata key that forces a column kind (e.g. nested JSON as "other")


def file_error(message: str, code: str, cls: type[AimaasError] = InvalidInput) -> AimaasError:
    """An error about the uploaded file itself (``param="file"``)."""
    return cls(message, code=code, param="file")


@dataclass(slots=True)
class ReadState:
    """How a streaming pass reads the file; :class:`Restart` signals change it between attempts."""

    overrides: dict[str, pa.DataType] = field(default_factory=dict)  # column -> forced type
    block_size: int = 1 << 18  # csvfile.BLOCK_SIZE
    json_python: bool = False  # JSON Lines: use the exact (slower) Python reader instead of pyarrow's


class Restart(Exception):  # noqa: N818 - a control-flow signal, never shown to a user
    """The pass must start again with a changed :class:`ReadState` (a column needs a wider type, a row is
    longer than a block, or the fast JSON reader gave up)."""

    def __init__(self, column: str | None = None, type: pa.DataType | None = None, *,
                 block_size: int | None = None, json_python: bool = False) -> None:
        super().__init__(column, str(type), block_size, json_python)
        self.column, self.type, self.block_size, self.json_python = column, type, block_size, json_python

    def apply(self, state: ReadState) -> None:
        """Change ``state`` as this signal asks."""
        if self.column is not None and self.type is not None:
            state.overrides[self.column] = self.type
        if self.block_size is not None:
            state.block_size = self.block_size
        state.json_python = state.json_python or self.json_python


MAX_RESTARTS = 64


def with_restarts(run: Callable[[ReadState], T]) -> T:
    """Call ``run`` until it finishes without a :class:`Restart` (each restart widens the state)."""
    state = ReadState()
    for _ in range(MAX_RESTARTS):
        try:
            return run(state)
        except Restart as signal:
            signal.apply(state)
    raise AimaasError("The file's column types kept changing while reading; upload it as Parquet instead.",
                      code="too_many_restarts")


def quote(name: str, limit: int = 80) -> str:
    """A column/entry name for an error message: repr-quoted and shortened."""
    text = name if len(name) <= limit else name[: limit - 1] + "…"
    return repr(text)


_DONE = object()


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Iterate ``items`` in a background thread, ``depth`` items ahead.

    Reading and parsing (pyarrow, which releases the GIL) then overlaps with the caller's work. Exceptions
    raised by ``items`` are re-raised in the caller; when the caller stops early the thread stops too.
    """
    slots: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object, exc: BaseException | None = None) -> bool:
        while not stop.is_set():
            try:
                slots.put((item, exc), timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the caller
            put(_DONE, exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=work, name="aimaas-dataset-reader", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = slots.get()
            if item is _DONE:
                if exc is not None:
                    raise exc
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
