"""The ``cnn`` image classifier: decoding, quality on digits, ONNX parity, bad images, the digits target."""

from __future__ import annotations

import base64
import functools
import io
import json
import time
from typing import Any

import numpy as np
import onnx
import pandas as pd
import pytest

from aimaas.errors import Conflict, InvalidInput
from aimaas.training import get_trainer, model_metadata, parity, run_onnx, trainers_for
from aimaas.training.torch_cnn import decode_images, image_feed

from .conftest import FakeTrial, Split

pytest.importorskip("torch")
PROBA_TOL = 1e-4
SMALL = {"filters": 16, "dense_units": 64}  # a narrow network: the fast tests check behaviour, not accuracy


def png(pixels: np.ndarray, mode: str = "L", fmt: str = "PNG") -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), mode=mode).save(out, format=fmt)
    return out.getvalue()


@functools.cache
def _digits() -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    frame = pd.DataFrame({"image": [png(np.floor(im * 255 / 16)) for im in digits.images]})  # as apps/demo.py
    return frame, pd.Series(digits.target, name="digit")


def digits_split(n: int | None = None, test_size: float = 0.2) -> Split:
    """The digits as 8x8 greyscale PNG files (the demo dataset), stratified: the first ``n`` rows, or all."""
    from sklearn.model_selection import train_test_split

    X, y = _digits()
    if n is not None:
        X, y = X.iloc[:n], y.iloc[:n]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=test_size, stratify=y, random_state=0)
    return Split(X_train, y_train, X_test, y_test)


def colour_split(n: int = 120) -> Split:
    """RGB images of different sizes: a red blob (class "red") or a blue one ("blue") on a noisy background."""
    rng = np.random.default_rng(0)
    images, labels = [], []
    for i in range(n):
        side = int(rng.integers(10, 20))
        img = rng.integers(0, 60, (side, side, 3))
        colour = "red" if i % 2 else "blue"
        y0, x0 = rng.integers(0, side // 2, 2)
        img[y0:y0 + side // 2, x0:x0 + side // 2, 0 if colour == "red" else 2] = 230
        images.append(png(img, "RGB", "PNG" if i % 3 else "BMP"))
        labels.append(colour)
    X, y = pd.DataFrame({"image": images}), pd.Series(labels, name="colour")
    return Split(X.iloc[:90], y.iloc[:90], X.iloc[90:], y.iloc[90:])


def test_cnn_is_registered_for_images() -> None:
    assert "cnn" in trainers_for("classification", modality="image")
    assert "cnn" not in trainers_for("classification")
    cls = get_trainer("cnn")
    assert cls.modality == "image" and cls.checkpoints


def test_digits_quality_and_onnx_parity() -> None:
    data = digits_split(700)
    events: list[dict[str, Any]] = []
    trainer = get_trainer("cnn")(max_epochs=8, **SMALL)
    result = trainer.fit(data.X_train, data.y_train, report=events.append)
    assert result.classes == list(range(10)) and result.features == ["image"]
    assert result.extra["image"] == {**result.extra["image"], "channels": 1, "height": 8, "width": 8, "mode": "L"}
    epochs = [e for e in events if e["event"] == "epoch"]
    assert epochs and set(epochs[0]) == {"event", "epoch", "epochs", "loss", "valid_loss", "valid_score",
                                         "elapsed_s"}
    proba = trainer.predict_proba(data.X_test)
    pred = trainer.predict(data.X_test)
    assert proba.shape == (len(data.X_test), 10) and pred.shape == (len(data.X_test),)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert np.mean(pred == data.y_test.to_numpy()) >= 0.9

    blob = trainer.export_onnx(data.X_test.head())
    model = onnx.load_from_string(blob)
    onnx.checker.check_model(model, full_check=True)
    assert [i.name for i in model.graph.input] == ["image"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [1, 8, 8]
    assert {node.domain for node in model.graph.node} <= {""}
    meta = model_metadata(blob)
    assert meta["input_kind"] == "image" and meta["trainer"] == "cnn" and meta["classes"] == list(range(10))
    assert meta["outputs"] == {"label": "label", "probabilities": "probabilities"}
    assert meta["image"]["mode"] == "L" and len(meta["image"]["mean"]) == 1
    report = parity(trainer, blob, data.X_test)
    assert report["label_agreement"] == 1.0 and report["max_abs_diff_proba"] < PROBA_TOL
    feed = image_feed(data.X_test.head(3), meta)
    assert feed["image"].dtype == np.float32 and feed["image"].shape == (3, 1, 8, 8)


def test_rgb_images_of_mixed_sizes_and_formats() -> None:
    data = colour_split()
    trainer = get_trainer("cnn")(max_epochs=6, **SMALL)
    result = trainer.fit(data.X_train, data.y_train, X_valid=data.X_test, y_valid=data.y_test)
    image = result.extra["image"]
    assert (image["mode"], image["channels"], image["height"]) == ("RGB", 3, 19)  # the largest side seen
    assert result.valid_score is not None and result.valid_score >= 0.9
    blob = trainer.export_onnx(data.X_test)
    out = run_onnx(blob, data.X_test)
    assert out.labels is not None and set(out.labels.tolist()) <= {"red", "blue"}
    report = parity(trainer, blob, data.X_test)
    assert report["label_agreement"] == 1.0 and report["max_abs_diff_proba"] < PROBA_TOL


def test_decoding_greyscale_rgb_alpha_and_base64() -> None:
    grey = png(np.full((4, 6), 100))
    rgba = io.BytesIO()
    from PIL import Image

    Image.new("RGBA", (5, 5), (255, 0, 0, 0)).save(rgba, format="PNG")  # fully transparent red
    frame = pd.DataFrame({"image": [grey, rgba.getvalue(), "data:image/png;base64," + base64.b64encode(grey).decode()]})
    pixels, mode, side = decode_images(frame)
    assert (mode, side, pixels.shape) == ("RGB", 8, (3, 8, 8, 3))  # one colour file: all decode as RGB
    assert (pixels[1] == 255).all()  # transparency composited on white
    np.testing.assert_array_equal(pixels[0], pixels[2])
    pixels, mode, side = decode_images(frame.iloc[[0, 2]], side=4)
    assert (mode, pixels.shape) == ("L", (2, 4, 4, 1)) and (pixels == 100).all()


@pytest.mark.parametrize(("value", "words"), [
    (b"not an image at all", "row 1 of column 'image' is not a readable image"),
    (png(np.zeros((8, 8)))[:30], "row 1 of column 'image' is not a readable image"),
    (12345, "holds int"),
    (None, "row 1 of column 'image' has no image"),
])
def test_bad_images_name_the_row(value: Any, words: str) -> None:
    frame = pd.DataFrame({"image": [png(np.zeros((8, 8))), value, png(np.ones((8, 8))), png(np.ones((8, 8)))]})
    with pytest.raises(InvalidInput) as info:
        get_trainer("cnn")(max_epochs=1, **SMALL).fit(frame, pd.Series([0, 1, 0, 1]))
    assert info.value.param == "image" and words in info.value.message.lower()


def test_missing_image_column_and_unfitted_model() -> None:
    data = digits_split(100)
    with pytest.raises(InvalidInput) as info:
        get_trainer("cnn")().fit(data.X_train.rename(columns={"image": "picture"}), data.y_train)
    assert info.value.param == "image" and "column named 'image'" in info.value.message
    with pytest.raises(Conflict):
        get_trainer("cnn")().predict(data.X_test)
    trainer = get_trainer("cnn")(max_epochs=1, **SMALL)
    trainer.fit(data.X_train, data.y_train)
    with pytest.raises(InvalidInput) as info:
        trainer.predict(pd.DataFrame({"pixels": [1]}))
    assert info.value.param == "image"


@pytest.mark.parametrize(("params", "param"), [({"image_size": 2}, "image_size"), ({"blocks": 5}, "blocks"),
                                               ({"filters": 0}, "filters"), ({"dropout": 0.9}, "dropout")])
def test_bad_hyperparameters(params: dict[str, Any], param: str) -> None:
    data = digits_split(100)
    with pytest.raises(InvalidInput) as info:
        get_trainer("cnn")(max_epochs=1, **params).fit(data.X_train, data.y_train)
    assert info.value.param == param


def test_same_seed_same_model_and_search_space() -> None:
    data = digits_split(200)
    a, b = (get_trainer("cnn")(max_epochs=2, **SMALL) for _ in range(2))
    a.fit(data.X_train, data.y_train)
    b.fit(data.X_train, data.y_train)
    assert a.export_onnx(data.X_test) == b.export_onnx(data.X_test)
    params = get_trainer("cnn").search_space(FakeTrial(1))
    trainer = get_trainer("cnn")(**{**params, "max_epochs": 1})
    result = trainer.fit(data.X_train, data.y_train)
    assert json.loads(json.dumps(result.to_dict()))["params"]["max_epochs"] == 1


@pytest.mark.slow  # about 15 s on one CPU thread; the acceptance target of the CNN trainer
def test_digits_reach_95_percent_in_under_two_minutes() -> None:
    data = digits_split()
    assert len(data.X_train) + len(data.X_test) == 1797
    started = time.perf_counter()
    trainer = get_trainer("cnn")()  # the defaults
    trainer.fit(data.X_train, data.y_train)
    seconds = time.perf_counter() - started
    accuracy = float(np.mean(trainer.predict(data.X_test) == data.y_test.to_numpy()))
    print(f"digits cnn: test accuracy {accuracy:.4f} in {seconds:.1f} s")
    assert accuracy >= 0.95 and seconds < 120
    report = parity(trainer, trainer.export_onnx(data.X_test), data.X_test)
    assert report["label_agreement"] == 1.0 and report["max_abs_diff_proba"] < PROBA_TOL
