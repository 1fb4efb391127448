"""A whole dataset version as a pandas DataFrame, for training.

Reads through the same streaming readers as ingest (so CSV dialects, encodings and JSON Lines typing behave
exactly as they did at upload) and keeps the file's row order, which is the order a split's assignment
array refers to. Image archives become one row per image with the encoded file in ``image`` (bytes) and
its folder in ``label``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa

from aimaas.services.datasets._common import ReadState, with_restarts
from aimaas.services.datasets.ingest import IngestLimits
from aimaas.services.datasets.preview import unify_chunks
from aimaas.services.datasets.tabular import iter_batches

__all__ = ["read_frame"]


def read_frame(path: Path, fmt: str, *, limits: IngestLimits | None = None) -> pd.DataFrame:
    """Every row of the dataset file ``path`` (format ``fmt``) as a DataFrame, in file order.

    Numeric columns become int64/float64 (float64 with NaN when values are missing), text columns objects
    (``None`` for missing). ``image_zip`` gives columns ``image`` (bytes) and ``label``.
    """
    limits = limits or IngestLimits()
    if fmt == "image_zip":
        return _images(path, limits)

    def run(state: ReadState) -> pd.DataFrame:
        columns: dict[str, list[pa.Array]] = {}
        order: list[str] = []
        rows = 0
        for batch in iter_batches(path, fmt, state, limits):
            for name in batch.schema.names:
                if name not in columns:  # a JSON Lines field first seen late: missing in earlier rows
                    columns[name] = [pa.nulls(rows)] if rows else []
                    order.append(name)
            for name in order:
                index = batch.schema.get_field_index(name)
                columns[name].append(batch.column(index) if index >= 0 else pa.nulls(batch.num_rows))
            rows += batch.num_rows
        data = {name: unify_chunks(columns[name]).to_pandas() for name in order}
        return pd.DataFrame(data, columns=order)

    return with_restarts(run)


def _images(path: Path, limits: IngestLimits) -> pd.DataFrame:
    labels = read_frame_columns(path, limits)
    with zipfile.ZipFile(path) as archive:
        images = [archive.read(name) for name in labels["path"]]
    return pd.DataFrame({"image": images, "label": labels["label"].to_numpy()})


def read_frame_columns(path: Path, limits: IngestLimits) -> pd.DataFrame:
    """The ``path`` and ``label`` rows of an image archive, in row order."""
    parts = [batch.to_pandas() for batch in iter_batches(path, "image_zip", ReadState(), limits)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"path": [], "label": []})
