"""``text_embedding``: texts embedded by the built-in sentence encoder, then a logistic-regression head.

The encoder (:mod:`aimaas.training.text_encoder`) is frozen and shared by every model, so the exported ONNX
graph is the head only: input ``embedding`` (float32 ``[N, 384]``), outputs ``label`` and ``probabilities``.
Its metadata says ``aimaas.input_kind = "text_embedding"`` and ``aimaas.encoder`` names the encoder, so a
server embeds the ``text`` column with that encoder (:func:`embedding_feed`) before running the graph.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from aimaas.errors import AimaasError, Conflict, InvalidInput
from aimaas.training import text_encoder
from aimaas.training.base import FitResult, Report, TaskKind, Trainer, TrialLike, register_trainer
from aimaas.training.validation import prepare_target, target_name

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["TextEmbeddingTrainer", "embedding_feed"]

INPUT_NAME = "embedding"


def embedding_feed(X: pd.DataFrame, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    """The ONNX feed of a ``text_embedding`` model: ``{"embedding": float32 [N, 384]}`` for the rows' ``text``.

    Raises :class:`AimaasError` (``encoder_mismatch``) when the model names an encoder other than the built-in
    one: its head would read vectors from another space.
    """
    wanted = str(meta.get("encoder", text_encoder.encoder_name()))
    if wanted != text_encoder.encoder_name():
        raise AimaasError(f"This model needs the sentence encoder {wanted!r}; this server has "
                          f"{text_encoder.encoder_name()!r}.", code="encoder_mismatch")
    return {INPUT_NAME: text_encoder.embed(text_encoder.text_column(X))}


def _emit(report: Report | None, event: dict[str, Any]) -> None:
    if report is not None:
        report(event)


@register_trainer("text_embedding")
class TextEmbeddingTrainer(Trainer):
    """Text classification on sentence embeddings: a multinomial logistic regression (``C``, ``class_weight``,
    ``max_iter``) over the 384-dimensional all-MiniLM-L6-v2 vectors of the ``text`` column.

    Strong on small labelled sets (tens to thousands of rows) because the encoder already knows English; the
    fit itself takes seconds. ``batch_size`` only bounds the encoder's memory.
    """

    tasks = frozenset({TaskKind.CLASSIFICATION})
    modality = "text"
    hyperparameters: ClassVar[dict[str, Any]] = {"C": 1.0, "class_weight": None, "max_iter": 1000, "batch_size": 64}

    def __init__(self, *, task: TaskKind | str | None = None, random_state: int = 0, **params: Any) -> None:
        super().__init__(task=task, random_state=random_state, **params)
        self._head: Any = None
        self._classes: list[Any] | None = None
        self._last: tuple[list[str], np.ndarray] | None = None

    @property
    def classes(self) -> list[Any] | None:
        return self._classes

    @property
    def head(self) -> Any:
        """The fitted scikit-learn ``LogisticRegression`` over embeddings."""
        if self._head is None:
            raise Conflict(f"The {self.name} trainer is not fitted yet; call fit first.", code="not_fitted")
        return self._head

    def _embed(self, X: pd.DataFrame, param: str = "text") -> np.ndarray:
        batch_size = self.params["batch_size"]
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInput(f"Hyperparameter 'batch_size' must be a positive integer; got {batch_size!r}.",
                               param="batch_size")
        texts = text_encoder.text_column(X, param=param)
        # predict, predict_proba and evaluation usually see the same rows one after the other: embed them once.
        if self._last is not None and self._last[0] == texts:
            return self._last[1]
        vectors = text_encoder.embed(texts, batch_size=batch_size)
        vectors.setflags(write=False)  # shared with the next call
        self._last = (texts, vectors)
        return vectors

    def fit(self, X: pd.DataFrame, y: Any = None, *, X_valid: pd.DataFrame | None = None, y_valid: Any = None,
            report: Report | None = None, schema: list[dict[str, Any]] | None = None,
            checkpoint_dir: Path | None = None) -> FitResult:
        from sklearn.linear_model import LogisticRegression

        started = time.perf_counter()
        texts = text_encoder.text_column(X)
        if len(texts) < 2:
            raise InvalidInput(f"Training needs at least 2 rows; got {len(texts)}.", param="text")
        name = target_name(y)
        target = prepare_target(y, self.task, n_rows=len(texts), schema=schema, name=name)
        yv = None
        if X_valid is not None:
            text_encoder.text_column(X_valid, param="X_valid")  # check before the slow part
            yv = prepare_target(y_valid, self.task, n_rows=len(X_valid), name=name, check_classes=False)
        empty = sum(1 for t in texts if not t.strip())
        if empty == len(texts):
            raise InvalidInput("Every text is empty; there is nothing to learn from.", param="text")
        _emit(report, {"event": "fit_started", "trainer": self.name, "task": self.task.value, "rows": len(texts),
                       "features": ["text"]})
        embed_started = time.perf_counter()
        embedded = self._embed(X)
        embed_seconds = time.perf_counter() - embed_started
        _emit(report, {"event": "embedded", "rows": len(texts), "seconds": round(embed_seconds, 3)})
        p = self.params
        head = LogisticRegression(C=p["C"], class_weight=p["class_weight"], max_iter=p["max_iter"],
                                  random_state=self.random_state)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                head.fit(embedded, target)
            except (ValueError, TypeError) as exc:
                param = next((k for k in ("C", "class_weight", "max_iter") if f"'{k}'" in str(exc)), None)
                if param is None:
                    raise
                raise InvalidInput(f"Invalid hyperparameter for {self.name}: {exc}", param=param) from exc
        self._head = head
        self._classes = [c.item() if isinstance(c, np.generic) else c for c in head.classes_]
        valid_score = None
        if X_valid is not None and yv is not None:
            valid_score = float(np.mean(self.predict(X_valid) == yv)) if len(yv) else None
        notes = [f"{empty} text(s) are empty; they were kept as they are."] if empty else []
        notes += sorted({f"{w.category.__name__}: {w.message}"[:300] for w in caught
                         if not issubclass(w.category, DeprecationWarning | FutureWarning)})[:5]
        seconds = time.perf_counter() - started
        _emit(report, {"event": "fit_finished", "seconds": round(seconds, 4), "valid_score": valid_score})
        return FitResult(
            trainer=self.name, task=self.task, params=self.get_params(), n_rows=len(texts), features=["text"],
            dropped=[{"name": str(c), "reason": "text models read the 'text' column only"}
                     for c in X.columns if c != "text"],
            notes=notes, classes=self._classes, fit_seconds=seconds, valid_score=valid_score,
            extra={"encoder": text_encoder.encoder_name(), "dimension": text_encoder.dimension(),
                   "n_iter": int(np.max(head.n_iter_)), "embed_seconds": round(embed_seconds, 3)},
        )

    def predict_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """Class labels for rows already embedded by :func:`text_encoder.embed`."""
        if len(embeddings) == 0:  # scikit-learn refuses empty inputs
            return np.asarray([], dtype=np.asarray(self.head.classes_).dtype)
        return np.asarray(self.head.predict(embeddings)).ravel()

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Class labels for the rows' ``text``."""
        return self.predict_embeddings(self._embed(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """``(n_rows, n_classes)`` probabilities ordered like :attr:`classes`."""
        embeddings = self._embed(X)
        if len(embeddings) == 0:
            return np.zeros((0, len(self.head.classes_)))
        proba = np.asarray(self.head.predict_proba(embeddings), dtype=np.float64)
        return proba / proba.sum(axis=1, keepdims=True)

    def export_onnx(self, sample: pd.DataFrame) -> bytes:
        """ONNX bytes of the head (input ``embedding`` float32 ``[N, 384]``); ``sample`` must have ``text``."""
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType

        from aimaas.training.onnx_export import TARGET_OPSET
        from aimaas.training.torch_common import finish_onnx

        head = self.head
        text_encoder.text_column(sample)
        try:
            model = convert_sklearn(head, name=f"aimaas_{self.name}", target_opset=TARGET_OPSET,
                                    initial_types=[(INPUT_NAME, FloatTensorType([None, text_encoder.dimension()]))],
                                    options={id(head): {"zipmap": False}})
        except Exception as exc:  # converters raise anything from RuntimeError to AssertionError
            raise AimaasError(f"Could not export the {self.name} model to ONNX: {exc}",
                              code="onnx_export_failed") from exc
        outputs = dict(zip(("label", "probabilities"), (o.name for o in model.graph.output), strict=True))
        return finish_onnx(model, trainer=self.name, task=self.task, outputs=outputs, classes=self._classes,
                           params=self.get_params(), input_kind="text_embedding", encoder=text_encoder.encoder_name(),
                           doc=f"aimaas {self.name} classifier head; input: the {text_encoder.encoder_name()} "
                               "embedding [N, 384] of each text.")

    @classmethod
    def search_space(cls, trial: TrialLike) -> dict[str, Any]:
        return {
            "C": trial.suggest_float("C", 1e-2, 1e2, log=True),
            "class_weight": trial.suggest_categorical("class_weight", [None, "balanced"]),
        }
