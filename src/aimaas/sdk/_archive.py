"""Packing a model folder (a Hugging Face model directory) into one zip for ``models.import_file``."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aimaas.errors import InvalidInput

__all__ = ["directory_files", "zipped_directory"]

_COPY_CHUNK = 1024 * 1024


def _hidden(name: str) -> bool:
    return name.startswith(".")


def directory_files(folder: Path) -> list[tuple[Path, str]]:
    """The regular files under ``folder`` as ``(path, relative POSIX name)``, sorted by name.

    Hidden files and folders (``.git``, ``.cache``, ``.DS_Store``…) are left out: a git clone would otherwise
    send its whole history. Symbolic links are refused rather than followed, because a link can point
    anywhere on this machine and its target would leave with the upload. Raises ``InvalidInput`` for a link,
    a special file, or a folder without any file.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InvalidInput(f"{root} is not a folder", param="path")
    found: list[tuple[Path, str]] = []
    for current, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(current)
        for name in list(dirnames):
            if _hidden(name):
                dirnames.remove(name)  # prune: os.walk does not descend into removed names
            elif (here / name).is_symlink():
                _refuse_link(root, here / name)
        for name in filenames:
            path = here / name
            if _hidden(name):
                continue
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                _refuse_link(root, path)
            if not stat.S_ISREG(mode):
                raise InvalidInput(f"{path} is not a regular file; remove it from the folder", param="path")
            found.append((path, path.relative_to(root).as_posix()))
    if not found:
        raise InvalidInput(f"the folder {root} holds no file to import", param="path")
    return sorted(found, key=lambda item: item[1])


def _refuse_link(root: Path, path: Path) -> None:
    raise InvalidInput(
        f"{path} is a symbolic link; links are not followed. Copy the folder with its files resolved "
        f"(for example `cp -rL {root} {root.name}-copy`) and import the copy",
        param="path",
    )


@contextmanager
def zipped_directory(folder: Path) -> Iterator[Path]:
    """A zip of ``folder`` (see :func:`directory_files`) in a private temporary folder, removed on exit.

    Entries sit at the root of the zip under their relative names (``config.json``, ``model.safetensors``…)
    and are stored uncompressed: weights barely compress, and storing keeps zipping as fast as copying.
    The zip is named after the folder (``my-model.zip``).
    """
    files = directory_files(folder)
    workdir = tempfile.mkdtemp(prefix="aimaas-import-")  # mode 0700
    try:
        target = Path(workdir) / f"{Path(folder).resolve().name or 'model'}.zip"
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
            for path, name in files:
                info = zipfile.ZipInfo.from_file(path, name, strict_timestamps=False)
                info.compress_type = zipfile.ZIP_STORED
                with path.open("rb") as source, archive.open(info, "w") as sink:
                    shutil.copyfileobj(source, sink, _COPY_CHUNK)
        yield target
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
