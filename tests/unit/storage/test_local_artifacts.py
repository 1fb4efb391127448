"""LocalArtifactStore specifics: permissions, links that lead outside the root, moving without copying."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from aimaas.errors import InvalidInput
from aimaas.storage.artifacts import LocalArtifactStore


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_directories_0700_and_files_0600(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "root")
    store.put_bytes("a/b/c.bin", b"x")
    source = tmp_path / "public.bin"
    source.write_bytes(b"y")
    source.chmod(0o644)
    store.put_file("a/copy.bin", source)
    store.put_file("a/moved.bin", source, move=True)
    assert _mode(store.root) == 0o700
    assert {_mode(store.root / d) for d in ("a", "a/b")} == {0o700}
    assert {_mode(store.root / f) for f in ("a/b/c.bin", "a/copy.bin", "a/moved.bin")} == {0o600}


def test_links_out_of_the_root_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    store = LocalArtifactStore(tmp_path / "root")
    (store.root / "escape").symlink_to(outside, target_is_directory=True)
    for call in (
        lambda: store.put_bytes("escape/new.bin", b"x"),
        lambda: store.open("escape/secret.txt"),
        lambda: store.local_path("escape/secret.txt"),
        lambda: store.delete("escape/secret.txt"),
        lambda: store.delete_prefix("escape"),
        lambda: store.put_bytes("escape/sub/dir/new.bin", b"x"),
    ):
        with pytest.raises(InvalidInput):
            call()
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_local_path_is_the_real_path(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "root")
    store.put_bytes("real/data.csv", b"a\n1\n")
    (store.root / "alias").symlink_to(store.root / "real", target_is_directory=True)
    assert store.local_path("alias/data.csv") == store.root / "real" / "data.csv"


def test_move_renames_instead_of_copying(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "root")
    source = tmp_path / "staged.bin"
    source.write_bytes(os.urandom(1024 * 1024))
    inode = source.stat().st_ino
    stored = store.put_file("t/v1.bin", source, move=True, sha256="f" * 64)
    assert stored.sha256 == "f" * 64  # trusted: the caller hashed while receiving
    assert (store.root / "t" / "v1.bin").stat().st_ino == inode and not source.exists()


def test_move_across_filesystems_falls_back_to_copy(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on a different filesystem than the temporary directory")
    store = LocalArtifactStore(tmp_path / "root")
    source = shm / f"aimaas-test-{os.getpid()}.bin"
    source.write_bytes(b"z" * 1000)
    try:
        stored = store.put_file("t/v1.bin", source, move=True)
    finally:
        source.unlink(missing_ok=True)
    assert stored.size_bytes == 1000 and not source.exists()
    assert (store.root / "t" / "v1.bin").read_bytes() == b"z" * 1000


def test_source_must_be_a_regular_file(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "root")
    target = tmp_path / "target.bin"
    target.write_bytes(b"t")
    link = tmp_path / "link.bin"
    link.symlink_to(target)
    for source in (tmp_path, link):
        with pytest.raises(InvalidInput):
            store.put_file("k.bin", source, move=True)
    assert target.read_bytes() == b"t" and not store.exists("k.bin")
