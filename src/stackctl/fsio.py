"""Writing files so that a failure never leaves one half-written.

Everything goes to a temporary sibling first, is flushed to disk and checked, then renamed into
place: a kill at any moment leaves either the old file or the new one. A full disk becomes a
DiskFullError naming the path and the space the write needed.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stackctl.errors import DiskFullError
from stackctl.procs import pid_alive

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _free_bytes(path: Path) -> int | None:
    try:
        stat = os.statvfs(path)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


@contextmanager
def _space_errors(path: Path, need: int) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        if exc.errno not in _NO_SPACE:
            raise
        free = _free_bytes(path.parent if not path.is_dir() else path)
        has = f", {free} free" if free is not None else ""
        raise DiskFullError(
            f"{path}: no space left on the device: writing it needs {need} bytes{has}"
        ) from None


def _write_verified(target: Path, data: bytes, *, durable: bool = True) -> None:
    with target.open("wb") as handle:
        handle.write(data)
        handle.flush()
        if durable:  # a tree's many small files skip it: the swap of the folder is the commit
            os.fsync(handle.fileno())
    if target.stat().st_size != len(data):  # a short write must never be renamed into place
        raise OSError(errno.EIO, f"{target}: short write")


def write_text_atomic(path: Path, text: str) -> None:
    data = text.encode("utf-8")
    with _space_errors(path, len(data)):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            _write_verified(Path(tmp), data)
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def replace_tree(root: Path, files: list[tuple[str, str, int]]) -> list[Path]:
    """Write files into a fresh sibling folder, then swap it in: never a half-rendered tree."""
    need = sum(len(content.encode("utf-8")) for _, content, _ in files)
    with _space_errors(root, need):
        return _replace_tree(root, files)


def _remove_dead_staging(root: Path) -> None:
    """Staging folders of renders that were killed (SIGKILL leaves them): `.NAME.PID.xxxx`."""
    for stale in root.parent.glob(f".{root.name}.*.*"):
        pid = stale.name[len(root.name) + 2 :].split(".")[0]
        if stale.is_dir() and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _replace_tree(root: Path, files: list[tuple[str, str, int]]) -> list[Path]:
    root.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_staging(root)
    staging = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.{os.getpid()}."))
    written = []
    try:
        for rel, content, mode in files:
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_verified(target, content.encode("utf-8"), durable=False)
            target.chmod(mode)
            written.append(root / rel)
        old = root.with_name(f".{root.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if root.exists():
            root.rename(old)
        staging.rename(root)  # a kill between the two renames: the next render writes root
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return written
