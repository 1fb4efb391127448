"""Zip datasets (text_zip, image_zip) and the archive safety checks."""

from __future__ import annotations

import stat
import struct
import zipfile

import pytest

from aimaas.errors import InvalidInput, PayloadTooLarge
from aimaas.services.datasets.archives import IngestLimits, SafeZip
from aimaas.services.datasets.ingest import inspect_dataset

from .conftest import BMP, GIF, JPEG, PNG, WEBP, tiny_png


def _fails(path, fmt, code, cls=InvalidInput, limits=None):
    with pytest.raises(cls) as err:
        inspect_dataset(path, fmt, limits)
    assert err.value.code == code, err.value.message
    assert err.value.param == "file"
    return err.value.message


def _patch_sizes(path, name: bytes, *, size: int | None = None, flags: int | None = None) -> None:
    """Rewrite the local and central headers of entry ``name`` (a crafted, lying archive)."""
    data = bytearray(path.read_bytes())
    layouts = ((b"PK\x03\x04", 22, 6, 26, 30), (b"PK\x01\x02", 24, 8, 28, 46))  # local header, central directory
    for signature, size_at, flag_at, name_len_at, header in layouts:
        pos = data.find(signature)
        while pos != -1:
            n = struct.unpack_from("<H", data, pos + name_len_at)[0]
            if bytes(data[pos + header: pos + header + n]) == name:
                if size is not None:
                    struct.pack_into("<I", data, pos + size_at, size)
                if flags is not None:
                    struct.pack_into("<H", data, pos + flag_at, flags)
            pos = data.find(signature, pos + 4)
    path.write_bytes(bytes(data))


def test_text_zip(make_zip):
    path = make_zip("docs.zip", {"a.txt": "hello world", "sub/b.md": "\ufeff# Title\nbody", "c.TXT": "x",
                                 "__MACOSX/._a.txt": b"\x00\x05", ".DS_Store": b"\x00", "empty_dir/": ""})
    result = inspect_dataset(path, "text_zip")
    assert result.num_rows == 3
    assert result.schema == [{"name": "path", "type": "string", "missing": 0},
                             {"name": "text", "type": "text", "missing": 0}]
    text = result.stats["columns"][1]
    assert text["length"] == {"min": 1, "mean": pytest.approx((11 + 12 + 1) / 3), "max": 12}
    assert result.target_suggestion is None


def test_text_zip_entry_not_utf8(make_zip):
    path = make_zip("docs.zip", {"good.txt": "fine", "bad.txt": "première ligne\n".encode("latin-1")})
    message = _fails(path, "text_zip", "bad_encoding")
    assert "'bad.txt'" in message and "line 1" in message


def test_text_zip_with_an_image_is_refused(make_zip):
    path = make_zip("docs.zip", {"a.txt": "x", "b.png": PNG})
    with pytest.raises(InvalidInput) as err:
        inspect_dataset(path, "text_zip")
    assert "'b.png'" in err.value.message


def test_image_zip(make_zip):
    entries = {"cats/1.png": tiny_png(), "cats/2.jpg": JPEG, "cats/3.gif": GIF, "dogs/1.bmp": BMP,
               "dogs/2.webp": WEBP, "__MACOSX/dogs/._2.webp": b"junk"}
    result = inspect_dataset(make_zip("pets.zip", entries), "image_zip")
    assert result.num_rows == 5
    assert result.schema == [{"name": "path", "type": "image", "missing": 0},
                             {"name": "label", "type": "label", "missing": 0}]
    assert result.stats["label_counts"] == {"cats": 3, "dogs": 2}
    assert result.stats["columns"][1]["label_counts"] == {"cats": 3, "dogs": 2}
    assert result.target_suggestion == "label"


def test_image_zip_under_one_top_folder(make_zip):
    path = make_zip("pets.zip", {"pets/cats/1.png": PNG, "pets/dogs/1.png": PNG, "pets/dogs/2.png": PNG})
    assert inspect_dataset(path, "image_zip").stats["label_counts"] == {"cats": 1, "dogs": 2}


def test_image_that_is_not_an_image(make_zip):
    path = make_zip("pets.zip", {"cats/1.png": PNG, "cats/evil.png": b"#!/bin/sh\nrm -rf /\n"})
    assert "'cats/evil.png'" in _fails(path, "image_zip", "invalid_image")


def test_image_outside_a_label_folder(make_zip):
    path = make_zip("pets.zip", {"cats/1.png": PNG, "loose.png": PNG})
    assert "'loose.png'" in _fails(path, "image_zip", "bad_archive_layout")


@pytest.mark.parametrize("fmt", ["text_zip", "image_zip"])
def test_zip_without_usable_files(make_zip, fmt):
    path = make_zip("junk.zip", {"__MACOSX/._x": b"x", ".DS_Store": b"x", "folder/": ""})
    assert "no usable files" in _fails(path, fmt, "empty_archive")


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        ("/etc/passwd.txt", "absolute path"),
        ("../../evil.txt", "outside the archive"),
        ("docs/../../evil.txt", "outside the archive"),
        ("..\\evil.txt", "Windows path"),
        ("C:/Windows/evil.txt", "Windows path"),
        ("C:\\evil.txt", "Windows path"),
    ],
)
def test_unsafe_entry_names(tmp_path, entry, needle):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ok.txt", "fine")
        zf.writestr(zipfile.ZipInfo(entry), "evil")
    message = _fails(path, "text_zip", "unsafe_archive")
    assert needle in message and repr(entry) in message


def test_symlink_entry(tmp_path):
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("secret.txt")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/shadow")
    assert "symbolic link" in _fails(path, "text_zip", "unsafe_archive")


def test_encrypted_entry(make_zip):
    path = make_zip("enc.zip", {"a.txt": "secret"})
    _patch_sizes(path, b"a.txt", flags=0x1)
    assert "encrypted" in _fails(path, "text_zip", "unsafe_archive")


def test_too_many_entries(make_zip):
    path = make_zip("many.zip", {f"{i}.txt": "x" for i in range(6)})
    limits = IngestLimits(max_archive_entries=5)
    assert "6 entries" in _fails(path, "text_zip", "archive_too_large", PayloadTooLarge, limits)


def test_too_many_bytes(make_zip):
    path = make_zip("big.zip", {"a.txt": "x" * 600, "b.txt": "y" * 600})
    limits = IngestLimits(max_archive_bytes=1000)
    assert "1,200 bytes" in _fails(path, "text_zip", "archive_too_large", PayloadTooLarge, limits)


def test_zip_bomb_ratio(make_zip):
    path = make_zip("bomb.zip", {"zeros.txt": b"\x00" * (4 * 1024 * 1024)})
    message = _fails(path, "text_zip", "archive_too_large", PayloadTooLarge, IngestLimits(max_archive_ratio=100))
    assert "'zeros.txt'" in message and "zip bomb" in message


def test_header_that_lies_about_the_size(make_zip):
    path = make_zip("liar.zip", {"a.txt": "ok", "zeros.txt": b"a" * (3 * 1024 * 1024)})
    _patch_sizes(path, b"zeros.txt", size=1000)  # claims 1000 bytes, really expands to 3 MiB
    message = _fails(path, "text_zip", "unsafe_archive")
    assert "'zeros.txt'" in message and "header" in message


def test_reading_enforces_the_byte_limit(make_zip):
    path = make_zip("two.zip", {"a.txt": "a" * 700, "b.txt": "b" * 700})
    with SafeZip(path, IngestLimits(max_archive_bytes=2000)) as archive:
        archive.limits = IngestLimits(max_archive_bytes=1000)  # as if the directory had under-reported
        archive.read(archive.members[0])
        with pytest.raises(PayloadTooLarge) as err:
            archive.read(archive.members[1])
    assert err.value.code == "archive_too_large"


def test_not_a_zip(write):
    assert "not a readable zip" in _fails(write("x.zip", b"PK\x03\x04garbage"), "text_zip", "malformed_archive")
