"""A disk build on a machine without sfdisk (a minimal Debian) fails first, naming the package."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackctl.errors import ImageError
from stackctl.image import disk


def test_missing_tools_are_named_with_their_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only coreutils' dd on PATH: every other disk tool is missing.
    (tmp_path / "dd").symlink_to("/bin/dd")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ImageError) as caught:
        disk.require_disk_tools()
    message = str(caught.value)
    assert "sfdisk" in message
    assert "mkfs.ext4" in message
    assert "dd," not in message
    assert "fdisk" in caught.value.hint
    assert "e2fsprogs" in caught.value.hint


def test_write_disk_checks_tools_before_touching_the_rootfs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    with pytest.raises(ImageError, match="sfdisk"):
        disk.write_disk(rootfs, tmp_path / "key", tmp_path / "out.raw")
    assert list(rootfs.iterdir()) == []
    assert not (tmp_path / "out.raw").exists()
