from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from stackctl.errors import MirrorError
from stackctl.mirror import find_in_mirror
from stackctl.models.resolved import ArtefactPin


def _pin(content: bytes, file: str = "model.gguf") -> ArtefactPin:
    return ArtefactPin(
        url="https://example.invalid/model.gguf",
        file=file,
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        verified=True,
    )


def test_found_by_file_name(tmp_path: Path) -> None:
    (tmp_path / "model.gguf").write_bytes(b"weights")
    assert find_in_mirror(tmp_path, _pin(b"weights")) == (tmp_path / "model.gguf").resolve()


def test_found_by_sha256(tmp_path: Path) -> None:
    pin = _pin(b"weights")
    assert pin.sha256 is not None
    (tmp_path / "sha256").mkdir()
    (tmp_path / "sha256" / pin.sha256).write_bytes(b"weights")
    assert find_in_mirror(tmp_path, pin).name == pin.sha256


def test_wrong_content_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.gguf").write_bytes(b"other")
    with pytest.raises(MirrorError) as err:
        find_in_mirror(tmp_path, _pin(b"weights"))
    assert "sha256 is not the pinned" in err.value.message


def test_missing_artefact_names_mirror_and_file(tmp_path: Path) -> None:
    with pytest.raises(MirrorError) as err:
        find_in_mirror(tmp_path, _pin(b"weights"))
    assert str(tmp_path) in err.value.message
    assert "model.gguf" in err.value.message


def test_mirror_must_be_a_folder(tmp_path: Path) -> None:
    with pytest.raises(MirrorError):
        find_in_mirror(tmp_path / "absent", _pin(b"x"))
