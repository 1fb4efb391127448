from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from aimaas.errors import PayloadTooLarge
from aimaas.services.datasets.staging import StagedUpload


def test_staged_upload_hashes_and_is_private(tmp_path: Path) -> None:
    with StagedUpload(tmp_path / "staging", max_bytes=100) as staged:
        staged.write(b"hello ")
        staged.write(b"world")
        assert staged.finish() == hashlib.sha256(b"hello world").hexdigest()
        assert staged.path.read_bytes() == b"hello world"
        assert staged.path.stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "staging").stat().st_mode & 0o777 == 0o700
    assert list((tmp_path / "staging").iterdir()) == []


def test_cap_discards_the_file(tmp_path: Path) -> None:
    staged = StagedUpload(tmp_path, max_bytes=10)
    staged.write(b"x" * 10)
    with pytest.raises(PayloadTooLarge):
        staged.write(b"y")
    assert not staged.path.exists()
