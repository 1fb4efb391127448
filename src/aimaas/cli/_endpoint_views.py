"""What ``aimaas deploy``, ``endpoints`` and ``predict`` read and print: the state line, an endpoint in detail,
examples of calling it, rows from JSON or CSV, and predictions as a table or a file."""

from __future__ import annotations

import contextlib
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.text import Text

from aimaas.cli._common import table
from aimaas.errors import AimaasError, InvalidInput
from aimaas.sdk import split_ref
from aimaas.sdk._inputs import predict_inputs  # the SDK's own reading of rows, so both agree

if TYPE_CHECKING:
    from aimaas.schemas import EndpointPublic, PredictResponse
    from aimaas.sdk import Client

__all__ = [
    "endpoint_view",
    "examples",
    "predictions_table",
    "read_inputs",
    "rows_of",
    "sample_row",
    "state_line",
    "write_predictions",
]

MAX_TABLE_ROWS = 50
_EMBEDDING_TASKS = frozenset({"embedding", "text-embedding", "feature-extraction", "sentence-similarity"})
_CHAT_TASKS = frozenset({"text-generation", "chat", "text2text-generation"})
_FIRST_COLUMNS = ("label", "value", "cluster")


def _ready(endpoint: EndpointPublic) -> str:
    replicas = endpoint.status.replicas
    if not replicas:
        return "no replica yet"
    return f"{sum(r.state == 'ready' for r in replicas)}/{len(replicas)} replicas ready"


def state_line(endpoint: EndpointPublic) -> str:
    """``ready · iris@prod → version 3 · 1/1 replicas ready · canary iris/4 (10%) → version 4``."""
    status = endpoint.status
    version = f" → version {status.version}" if status.version is not None else ""
    parts = [status.state, f"{endpoint.model}{version}"]
    if status.state == "idle":
        parts.append("scaled to zero: the next request starts a replica")
    else:
        parts.append(_ready(endpoint))
    if endpoint.canary is not None:
        canary = f" → version {status.canary_version}" if status.canary_version is not None else ""
        parts.append(f"canary {endpoint.canary.model} ({endpoint.canary.weight:.0%}){canary}")
    if status.reason:
        parts.append(status.reason)
    return " · ".join(parts)


def endpoint_view(e: EndpointPublic) -> RenderableType:
    """One endpoint: what it serves, its settings, its state, and a row per replica."""
    facts: list[tuple[str, object]] = [
        ("model", e.model),
        ("version", e.status.version),
        ("task", e.task),
        ("canary", f"{e.canary.model} ({e.canary.weight:.0%})" if e.canary else None),
        ("canary version", e.status.canary_version),
        ("state", e.status.state),
        ("reason", e.status.reason),
        ("replicas", f"{e.min_replicas} to {e.max_replicas} (target {e.target_ongoing_requests} requests each)"),
        ("batching", f"up to {e.max_batch_size} requests, waiting at most {e.max_wait_ms:g} ms"),
        ("idle timeout", f"{e.idle_timeout_s:g} s"),
        ("description", e.description),
        ("created", e.created_at),
        ("updated", e.updated_at),
    ]
    parts: list[RenderableType] = [table(f"Endpoint {e.name}", ["field", "value"], [f for f in facts if f[1]])]
    if e.status.replicas:
        rows = [(r.id, r.version, r.state, r.ongoing, r.served) for r in e.status.replicas]
        parts.append(table("Replicas", ["id", "version", "state", "in flight", "served"], rows))
    return Group(*parts)


# -- examples ----------------------------------------------------------------------------------------------
def _sample(column: dict[str, Any]) -> Any:
    kind = str(column.get("type") or column.get("role") or "")
    if kind in ("integer", "int64") or column.get("dtype") == "int64":
        return 1
    if kind in ("float", "number", "numeric") or column.get("role") == "numeric":
        return 1.0
    if kind == "boolean":
        return True
    if kind == "image" or column.get("role") == "image":
        return "<base64 image>"
    return "text"


def sample_row(signature: dict[str, Any]) -> dict[str, Any]:
    """A made-up row with the model's input columns, to show the shape of a request."""
    kind = signature.get("input_kind")
    if kind == "image":
        return {"image": "<base64 image>"}
    if kind in ("text_tokens", "text_embedding") or not kind:
        return {"text": "hello world"}
    columns = [c for c in signature.get("inputs") or [] if isinstance(c, dict) and c.get("name")]
    return {str(c["name"]): _sample(c) for c in columns} or {"feature": 1.0}


def _signature(c: Client, endpoint: EndpointPublic) -> dict[str, Any]:
    if endpoint.status.version is None:
        return {}
    with contextlib.suppress(AimaasError):  # the examples are a courtesy: never fail a deploy over them
        return c.models.version(split_ref(endpoint.model)[0], endpoint.status.version).signature
    return {}


def examples(c: Client, endpoint: EndpointPublic) -> RenderableType:
    """How to call the endpoint: curl, ``aimaas predict``, and the OpenAI or aimaas Python client. The key is
    written as ``$AIMAAS_API_KEY``, never printed."""
    name, url = endpoint.name, c.url.rstrip("/")
    row = sample_row(_signature(c, endpoint))
    body = json.dumps({"inputs": [row]})
    lines = [
        ("With curl:", "bold"),
        (f"  curl -s {url}/api/v1/endpoints/{name}/predict \\", None),
        ('    -H "Authorization: Bearer $AIMAAS_API_KEY" -H "Content-Type: application/json" \\', None),
        (f"    -d '{body}'", None),
        ("With the CLI:", "bold"),
        (f"  aimaas predict {name} --json '{json.dumps([row])}'", None),
    ]
    openai = f'OpenAI(base_url="{url}/v1", api_key=os.environ["AIMAAS_API_KEY"])'
    if endpoint.task in _EMBEDDING_TASKS:
        lines += [("With the OpenAI client (pip install openai):", "bold"),
                  (f"  client = {openai}", None),
                  (f'  client.embeddings.create(model="{name}", input=["hello world"]).data[0].embedding', None)]
    elif endpoint.task in _CHAT_TASKS:
        lines += [("With the OpenAI client (pip install openai):", "bold"),
                  (f"  client = {openai}", None),
                  (f'  client.chat.completions.create(model="{name}", '
                   'messages=[{"role": "user", "content": "Hello!"}])', None)]
    else:  # the OpenAI API has no tabular predictions: show the aimaas client instead
        lines += [("With Python:", "bold"),
                  ("  from aimaas import Client", None),
                  (f'  Client("{url}").endpoints.predict("{name}", {[row]!r}).predictions', None)]
    return Group(*(Text(text, style=style or "") for text, style in lines))


# -- rows in -----------------------------------------------------------------------------------------------
def read_inputs(json_rows: str | None, csv_file: Path | None) -> Any:
    """The rows given on the command line: ``--json`` text (``@FILE`` reads a file, ``-`` stdin) or a CSV file
    read with pandas (numbers as numbers, empty cells as missing)."""
    if csv_file is not None:
        import pandas as pd

        try:
            return pd.read_csv(csv_file)
        except (ValueError, UnicodeDecodeError) as exc:  # pandas' parser and empty-file errors are ValueErrors
            raise InvalidInput(f"cannot read {csv_file} as CSV: {exc}", param="csv") from None
    text = json_rows or ""
    if text == "-":
        text = sys.stdin.read()
    elif text.startswith("@"):
        text = Path(text[1:]).expanduser().read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"--json is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            """give rows like '[{"sepal_length": 5.1}]'""",
            param="json",
        ) from None


def rows_of(data: Any) -> list[dict[str, Any]]:
    """The rows of anything ``predict`` accepts (a dict of columns is turned into rows)."""
    inputs = predict_inputs(data)
    if isinstance(inputs, list):
        return inputs
    names = list(inputs)
    return [dict(zip(names, values, strict=True)) for values in zip(*inputs.values(), strict=True)]


# -- predictions out ---------------------------------------------------------------------------------------
def _prediction_columns(predictions: Sequence[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for prediction in predictions:
        for key in prediction:
            seen.setdefault(key, None)
    return sorted(seen, key=lambda k: _FIRST_COLUMNS.index(k) if k in _FIRST_COLUMNS else len(_FIRST_COLUMNS))


def _short(value: Any) -> Any:
    if isinstance(value, dict):
        top = sorted(value.items(), key=lambda kv: -kv[1] if isinstance(kv[1], int | float) else 0)[:3]
        more = " …" if len(value) > 3 else ""
        return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in top) + more
    if isinstance(value, list) and len(value) > 8:
        return f"[{len(value)} values]"
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def predictions_table(predictions: Sequence[dict[str, Any]], answer: PredictResponse) -> RenderableType:
    """One row per prediction (the first 50): label, value or cluster, the 3 likeliest classes."""
    columns = _prediction_columns(predictions)
    rows = [[number, *(_short(p.get(c)) for c in columns)] for number, p in enumerate(predictions[:MAX_TABLE_ROWS])]
    title = f"Predictions of {answer.model}/{answer.version} (endpoint {answer.endpoint})"
    parts: list[RenderableType] = [table(title, ["row", *columns], rows)]
    if len(predictions) > MAX_TABLE_ROWS:
        parts.append(Text(f"… and {len(predictions) - MAX_TABLE_ROWS} more rows; --output FILE.csv writes them all",
                          style="dim"))
    return Group(*parts)


def _cell(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value


def write_predictions(
    path: Path, rows: Sequence[dict[str, Any]], predictions: Sequence[dict[str, Any]], answer: PredictResponse
) -> None:
    """``FILE.json``: the answer with every prediction. Otherwise CSV: each input row followed by its
    prediction (``probabilities`` as one ``probability_<class>`` column per class; a prediction column whose
    name an input column already has is prefixed ``predicted_``)."""
    if path.suffix.lower() == ".json":
        payload = answer.model_dump(mode="json") | {"predictions": list(predictions)}
        path.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
        return
    inputs: dict[str, None] = {}
    for row in rows:
        for key in row:
            inputs.setdefault(key, None)
    outputs: dict[str, tuple[str, str | None]] = {}  # CSV column → (prediction key, class)
    for key in _prediction_columns(predictions):
        if key == "probabilities":
            classes = {str(c): None for p in predictions for c in (p.get(key) or {})}
            outputs |= {f"probability_{c}": (key, c) for c in classes}
        else:
            outputs[key] = (key, None)
    outputs = {(f"predicted_{k}" if k in inputs else k): v for k, v in outputs.items()}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*inputs, *outputs])
        for row, prediction in zip(rows, predictions, strict=True):
            out = [prediction.get(k) if c is None else (prediction.get(k) or {}).get(c) for k, c in outputs.values()]
            writer.writerow([_cell(row.get(k)) for k in inputs] + [_cell(v) for v in out])
