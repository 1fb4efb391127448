"""``cnn``: a small PyTorch convolutional network classifying images.

Rows hold one column ``image`` of encoded files (PNG, JPEG, GIF, BMP, WEBP, TIFF; base64 text is accepted
too). Files are decoded with Pillow to greyscale when every training image is greyscale, else to RGB,
resized to a square side (by default the largest side seen, between 8 and 64 pixels, so 8x8 digits stay
8x8) and normalised per channel with the training mean and standard deviation. The ONNX model takes the
``image`` tensor ``float32 [N, C, H, W]``; :func:`image_feed` builds it from raw rows exactly as training did.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import time
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from aimaas.errors import Conflict, InvalidInput
from aimaas.training.base import FitResult, Report, TaskKind, Trainer, TrialLike, register_trainer
from aimaas.training.torch_common import (
    LOOP_HYPERPARAMETERS,
    STOPPING_PARAMS,
    LoopConfig,
    accuracy,
    add_label_output,
    check_fraction,
    check_number,
    class_array,
    data_digest,
    export_module,
    finish_onnx,
    import_torch,
    predict_batches,
    seed_everything,
    torch_threads,
    train_epochs,
    validation_split,
)
from aimaas.training.validation import prepare_target, target_name

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["CNNTrainer", "decode_images", "image_feed"]

COLUMN = "image"
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
MAX_PIXELS = 40_000_000  # refuse decompression bombs before decoding
_GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})


def _image_bytes(value: Any, row: Any) -> bytes:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise InvalidInput(f"Row {row} of column {COLUMN!r} has no image; drop the row or add its file.",
                           param=COLUMN)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):  # JSON requests carry files as base64, possibly as a data: URL
        text = value.split(",", 1)[1] if value.startswith("data:") else value
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            pass
    raise InvalidInput(f"Row {row} of column {COLUMN!r} holds {type(value).__name__}, not an image file; give the "
                       "encoded file bytes (or base64 text) of a PNG, JPEG, GIF, BMP, WEBP or TIFF image.",
                       param=COLUMN)


def _open(value: Any, row: Any, *, decode: bool) -> Any:
    """The Pillow image of one cell: only its header read unless ``decode`` (then pixels loaded, EXIF-rotated)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    data = _image_bytes(value, row)
    try:
        image: Any = Image.open(io.BytesIO(data), formats=FORMATS)
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise InvalidInput(f"Row {row} of column {COLUMN!r} is a {width}x{height} image, more than "
                               f"{MAX_PIXELS:,} pixels; resize it first.", param=COLUMN)
        if decode:
            image = ImageOps.exif_transpose(image)  # photos store their rotation in EXIF
            image.load()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise InvalidInput(f"Row {row} of column {COLUMN!r} is not a readable image ({exc}); give PNG, JPEG, GIF, "
                           "BMP, WEBP or TIFF files.", param=COLUMN) from None
    return image


def _convert(image: Any, mode: str, side: int) -> np.ndarray:
    from PIL import Image

    if mode == "RGB" and ("A" in image.getbands() or "transparency" in image.info):
        rgba = image.convert("RGBA")  # transparent pixels become white, not black
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    elif mode == "L" and image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        pixels = np.asarray(image, dtype=np.float64)  # 16-bit and float greys: scale to 0-255 before 8 bits
        top = 65535.0 if image.mode.startswith("I;16") or pixels.max() > 255 else 255.0
        image = Image.fromarray(np.clip(pixels * 255.0 / top, 0, 255).astype(np.uint8))
    image = image.convert(mode)
    if image.size != (side, side):
        image = image.resize((side, side), Image.Resampling.BILINEAR)
    out = np.asarray(image, dtype=np.uint8)
    return out[:, :, None] if out.ndim == 2 else out


def _column(X: pd.DataFrame) -> pd.Series:
    if not isinstance(X, pd.DataFrame) or COLUMN not in X.columns:
        raise InvalidInput(f"Image models need a column named {COLUMN!r} holding the encoded image files.",
                           param=COLUMN)
    return X[COLUMN]


def decode_images(X: pd.DataFrame, *, mode: str | None = None, side: int | None = None
                  ) -> tuple[np.ndarray, str, int]:
    """Decode the ``image`` column to ``uint8 [N, side, side, channels]``.

    ``mode`` ``"L"`` or ``"RGB"`` (None: ``"L"`` when every file is greyscale) and ``side`` (None: the largest
    side seen, kept between 8 and 64) are returned with the pixels. A missing column, a value that is not an
    image file, an undecodable or oversized image raise :class:`InvalidInput` naming the row.
    """
    if mode not in (None, "L", "RGB"):
        raise ValueError(f"image mode must be 'L' or 'RGB', not {mode!r}")
    column = _column(X)
    if mode is None or side is None:  # a first pass over the headers only: all decoded files never sit in memory
        headers = [(im.mode, max(im.size)) for im in (_open(v, row, decode=False) for row, v in column.items())]
        mode = mode or ("L" if all(m in _GREY_MODES for m, _ in headers) else "RGB")
        side = side or min(max([s for _, s in headers] + [8]), 64)
    pixels = np.empty((len(column), side, side, 1 if mode == "L" else 3), dtype=np.uint8)
    for i, (row, value) in enumerate(column.items()):
        pixels[i] = _convert(_open(value, row, decode=True), mode, side)
    return pixels, mode, side


def _normalise(pixels: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
    scaled = pixels.astype(np.float32) / np.float32(255.0)
    out = (scaled - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def image_feed(X: pd.DataFrame, meta: dict[str, Any]) -> dict[str, np.ndarray]:
    """The ONNX feed ``{"image": float32 [N, C, H, W]}`` for raw rows, decoded as ``meta["image"]`` says
    (``mode``, ``height``, ``mean``, ``std``): the ``image`` input kind of :data:`onnx_check.FEEDS`."""
    spec = meta["image"]
    pixels, _, _ = decode_images(X, mode=str(spec["mode"]), side=int(spec["height"]))
    return {COLUMN: _normalise(pixels, spec["mean"], spec["std"])}


def _build_network(channels: int, side: int, n_classes: int, filters: int, blocks: int, dense: int,
                   dropout: float) -> Any:
    nn = import_torch().nn
    layers: list[Any] = []
    width = channels
    for b in range(blocks):  # two 3x3 convolutions then a 2x2 max-pool halving the side
        out = filters * 2**b
        layers += [nn.Conv2d(width, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(),
                   nn.Conv2d(out, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(), nn.MaxPool2d(2)]
        width, side = out, side // 2
    layers += [nn.Flatten(), nn.Dropout(dropout), nn.Linear(width * side * side, dense), nn.ReLU(),
               nn.Dropout(dropout), nn.Linear(dense, n_classes)]
    return nn.Sequential(*layers)


def _shift(max_shift: int) -> Any:
    """Augmentation: move each image by up to ``max_shift`` pixels (edge pixels repeated)."""
    torch = import_torch()

    def augment(batch: Any, generator: Any) -> Any:
        n, _, h, w = batch.shape
        padded = torch.nn.functional.pad(batch, (max_shift,) * 4, mode="replicate")
        dy, dx = (torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator))
        rows = (torch.arange(h)[None, :] + dy[:, None])[:, None, :, None]
        cols = (torch.arange(w)[None, :] + dx[:, None])[:, None, None, :]
        return padded[torch.arange(n)[:, None, None, None], torch.arange(batch.shape[1])[None, :, None, None],
                      rows, cols]

    return augment


@register_trainer("cnn")
class CNNTrainer(Trainer):
    """Image classifier: ``blocks`` x (two 3x3 convolutions + batch norm + ReLU, 2x2 max-pool) with ``filters``
    doubling per block, then a dense layer; AdamW, cross-entropy, random shifts of up to 1/8 of the side
    (``augment``), early stopping, per-epoch checkpoints. ``image_size`` / ``blocks`` None choose from the data:
    the largest side seen (8 to 64) and log2(side) - 1 blocks (at most 4). See :class:`Trainer`."""

    tasks = frozenset({TaskKind.CLASSIFICATION})
    modality = "image"
    checkpoints = True
    hyperparameters: ClassVar[dict[str, Any]] = {
        "image_size": None, "filters": 32, "blocks": None, "dense_units": 128, "dropout": 0.25, "augment": True,
        **LOOP_HYPERPARAMETERS, "lr": 2e-3, "max_epochs": 30, "patience": 6, "max_seconds": 600.0,
    }

    def __init__(self, *, task: TaskKind | str | None = None, random_state: int = 0, **params: Any) -> None:
        super().__init__(task=task, random_state=random_state, **params)
        self._net: Any = None
        self._serving: Any = None
        self._classes: list[Any] | None = None
        self._image: dict[str, Any] = {}

    @property
    def classes(self) -> list[Any] | None:
        return self._classes

    def _settings(self) -> tuple[int | None, int | None, int, int, float]:
        p = self.params
        side = None if p["image_size"] is None else check_number(p, "image_size", int, low=4)
        if side is not None and side > 512:
            raise InvalidInput(f"Hyperparameter 'image_size' must be at most 512; got {side}.", param="image_size")
        blocks = None if p["blocks"] is None else check_number(p, "blocks", int, low=1)
        return (side, blocks, check_number(p, "filters", int, low=1), check_number(p, "dense_units", int, low=1),
                check_fraction(p, "dropout"))

    def fit(self, X: pd.DataFrame, y: Any = None, *, X_valid: pd.DataFrame | None = None, y_valid: Any = None,
            report: Report | None = None, schema: list[dict[str, Any]] | None = None,
            checkpoint_dir: Path | None = None) -> FitResult:
        started = time.perf_counter()
        torch = import_torch()
        side, blocks, filters, dense, dropout = self._settings()
        fraction = check_fraction(self.params)
        config = LoopConfig.from_params(self.params, self.random_state)
        column = _column(X)
        if len(column) < 2:
            raise InvalidInput(f"Training needs at least 2 images; got {len(column)}.", param=COLUMN)
        name = target_name(y)
        target = prepare_target(y, self.task, n_rows=len(X), schema=schema, name=name)
        pixels, mode, side = decode_images(X, side=side)
        blocks = blocks or max(1, min(4, int(math.log2(side)) - 1))
        if side >> blocks < 1:
            raise InvalidInput(f"{blocks} blocks halve a {side}-pixel image below one pixel; use fewer blocks or "
                               "a larger image_size.", param="blocks")
        if report is not None:
            report({"event": "fit_started", "trainer": self.name, "task": self.task.value, "rows": len(X),
                    "image": {"mode": mode, "side": side}})
        scaled = pixels.reshape(-1, pixels.shape[-1]).astype(np.float64) / 255.0
        mean = [float(v) for v in scaled.mean(axis=0)]
        std = [float(v) if v > 1e-6 else 1.0 for v in scaled.std(axis=0)]
        del scaled
        images = _normalise(pixels, mean, std)
        classes = sorted(np.unique(target).tolist())
        index = {c: i for i, c in enumerate(classes)}
        codes = np.asarray([index[v.item() if isinstance(v, np.generic) else v] for v in target], dtype=np.int64)
        if X_valid is not None:
            yv = prepare_target(y_valid, self.task, n_rows=len(X_valid), name=name, check_classes=False)
            valid_images = _normalise(decode_images(X_valid, mode=mode, side=side)[0], mean, std)
            valid_codes = np.asarray([index.get(v.item() if isinstance(v, np.generic) else v, -100) for v in yv],
                                     dtype=np.int64)
            train_images, train_codes = images, codes
        else:
            tr, va = validation_split(len(images), fraction, self.random_state, codes)
            train_images, train_codes = images[tr], codes[tr]
            valid_images, valid_codes = (images[va], codes[va]) if len(va) else (None, None)  # type: ignore[assignment]
        augment = _shift(max(1, side // 8)) if self.params["augment"] else None
        with torch_threads(config.threads):
            seed_everything(self.random_state)
            net = _build_network(pixels.shape[-1], side, len(classes), filters, blocks, dense, dropout)
            outcome = train_epochs(
                net, torch.nn.CrossEntropyLoss(ignore_index=-100), torch.as_tensor(train_images),
                torch.as_tensor(train_codes), config,
                X_valid=None if valid_images is None else torch.as_tensor(valid_images),
                y_valid=None if valid_codes is None else torch.as_tensor(valid_codes),
                score_fn=accuracy, augment=augment, report=report, checkpoint_dir=checkpoint_dir,
                fingerprint={"trainer": self.name, "random_state": self.random_state,
                             "params": {k: v for k, v in self.params.items() if k not in STOPPING_PARAMS},
                             "data": data_digest(train_images, train_codes, valid_images, valid_codes)})
        self._net, self._classes = net, classes
        self._serving = torch.nn.Sequential(net, torch.nn.Softmax(dim=1)).eval()
        self._image = {"channels": int(pixels.shape[-1]), "height": side, "width": side, "mean": mean,
                       "std": std, "mode": mode}
        given = X_valid is not None
        seconds = time.perf_counter() - started
        if report is not None:
            report({"event": "fit_finished", "seconds": round(seconds, 4),
                    "valid_score": outcome.valid_score if given else None})
        return FitResult(
            trainer=self.name, task=self.task, params=self.get_params(), n_rows=len(X), features=[COLUMN],
            dropped=[], notes=outcome.notes, classes=classes, fit_seconds=seconds,
            valid_score=outcome.valid_score if given else None,
            extra={"epochs": outcome.epochs, "best_epoch": outcome.best_epoch, "stop_reason": outcome.stop_reason,
                   "resumed_from": outcome.resumed_from, "image": dict(self._image), "blocks": blocks,
                   "holdout_score": None if given else outcome.valid_score, "history": outcome.history},
        )

    def _require_fitted(self) -> None:
        if self._serving is None:
            raise Conflict(f"The {self.name} trainer is not fitted yet; call fit first.", code="not_fitted")

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities ``(n_rows, n_classes)`` for rows holding an ``image`` column."""
        self._require_fitted()
        torch = import_torch()
        feed = image_feed(X, {"image": self._image})[COLUMN]
        with torch_threads(LoopConfig.from_params(self.params, self.random_state).threads):
            proba = predict_batches(self._serving, torch.as_tensor(feed), 256).astype(np.float64)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Class labels for rows holding an ``image`` column."""
        proba = self.predict_proba(X)
        return class_array(self._classes or [])[proba.argmax(axis=1)]

    def export_onnx(self, sample: pd.DataFrame) -> bytes:
        """The network with a softmax: input ``image`` float32 ``[N, C, H, W]``, outputs ``label`` and
        ``probabilities``; ``aimaas.image`` says how to decode and normalise files (see :func:`image_feed`)."""
        self._require_fitted()
        _column(sample)
        torch = import_torch()
        spec = self._image
        example = torch.zeros(2, spec["channels"], spec["height"], spec["width"])
        model = export_module(self._serving, example, input_name=COLUMN, output_name="probabilities")
        assert self._classes is not None
        add_label_output(model, "probabilities", self._classes)
        inputs = {"columns": [{"name": COLUMN, "input": COLUMN, "type": "image", "role": "image",
                               "dtype": "float32", "categories": []}], "dropped": [], "notes": []}
        return finish_onnx(model, trainer=self.name, task=self.task, classes=self._classes,
                           outputs={"label": "label", "probabilities": "probabilities"}, params=self.get_params(),
                           input_kind="image", inputs=inputs, image=spec,
                           doc=f"aimaas {self.name} image classifier; input: image float32 [N, "
                               f"{spec['channels']}, {spec['height']}, {spec['width']}].")

    @classmethod
    def search_space(cls, trial: TrialLike) -> dict[str, Any]:
        return {
            "filters": trial.suggest_categorical("filters", [16, 32, 48]),
            "dense_units": trial.suggest_categorical("dense_units", [64, 128, 256]),
            "dropout": trial.suggest_float("dropout", 0.0, 0.5),
            "lr": trial.suggest_float("lr", 3e-4, 5e-3, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
            "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128]),
            "augment": trial.suggest_categorical("augment", [True, False]),
        }
