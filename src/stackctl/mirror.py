"""A local artefact mirror: pinned files found by sha256, for boxes without internet.

A mirror is a folder. An artefact is found there as `<file>` (its pinned file name),
`sha256/<hex>` or `<hex>`, and is used only when its sha256 is the pinned one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from stackctl.errors import MirrorError
from stackctl.models.resolved import ArtefactPin

_CHUNK = 4 * 2**20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def find_in_mirror(mirror: Path, pin: ArtefactPin) -> Path:
    if not mirror.is_dir():
        raise MirrorError(f"{mirror}: the artefact mirror is not a folder")
    names = [pin.file] + ([f"sha256/{pin.sha256}", pin.sha256] if pin.sha256 else [])
    candidates = [mirror / name for name in names if (mirror / name).is_file()]
    if not candidates:
        raise MirrorError(
            f"{mirror}: no file for {pin.file} (sha256 {pin.sha256 or 'unknown'})",
            hint=f"put it there as {pin.file}, or run without --mirror to download {pin.url}",
        )
    for path in candidates:
        if pin.sha256 is None or sha256_file(path) == pin.sha256:
            return path.resolve()
    raise MirrorError(
        f"{candidates[0]}: sha256 is not the pinned {pin.sha256}",
        hint="the mirror holds a different file under this name; replace it",
    )
