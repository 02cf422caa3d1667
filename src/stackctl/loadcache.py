"""Shipped data files, validated once per content: a pickle of the loaded object in the cache.

Validating the catalog (and building pydantic's validators to do it) is a large share of a
`stackctl plan`; the files only change with the package or a user's edit. The loaded object is
kept under the cache dir, keyed by the bytes of every file it was read from and by the
package's code (path, size and mtime of each module: a changed model class is a new key), so a
kept object is never stale. A file with an error is never kept: it is re-read and reported.

The cache dir is the user's own (see yamlio.cache_root); what is in it is trusted like the
installed package, which the same user can write.
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import pydantic

import stackctl
from stackctl.yamlio import cache_root

T = TypeVar("T")

_CODE: list[str] = []  # the package's code fingerprint, once per process
_FAILED = (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError,
           ValueError, IndexError)  # fmt: skip


def _code_fingerprint() -> str:
    if not _CODE:
        digest = hashlib.sha256(f"{sys.version}\0{pydantic.VERSION}\0".encode())
        for path, size, mtime in sorted(_modules(Path(stackctl.__file__).parent)):
            digest.update(f"{path}\0{size}\0{mtime}\0".encode())
        _CODE.append(digest.hexdigest())
    return _CODE[0]


def _modules(folder: Path) -> Iterable[tuple[str, int, int]]:
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and entry.name != "__pycache__":
                yield from _modules(Path(entry.path))
            elif entry.name.endswith(".py"):
                stat = entry.stat()
                yield entry.path, stat.st_size, stat.st_mtime_ns


def content_key(kind: str, files: Iterable[Path]) -> str | None:
    """A digest of `kind`, the package's code and the files' bytes; None if a file is missing."""
    digest = hashlib.sha256(f"{kind}\0{_code_fingerprint()}\0".encode())
    try:
        for path in files:
            digest.update(f"{path.name}\0".encode() + path.read_bytes() + b"\0")
    except OSError:
        return None  # the loader reports it
    return digest.hexdigest()


def cached_load(kind: str, files: Iterable[Path], load: Callable[[], T], kept: type[T]) -> T:
    """`load()`, or the object it returned for these files' bytes before (a `kept`). One
    version is kept per kind: a new one replaces the last."""
    return cached_keyed(kind, content_key(kind, files), load, kept)


def cached_keyed(kind: str, key: str | None, load: Callable[[], T], kept: type[T]) -> T:
    """cached_load with the content_key already taken (None: just load)."""
    root = cache_root()
    if root is None or key is None:
        return load()
    cache = root / "loaded" / f"{kind}@{key}.pickle"
    return _through(cache, load, kept, older=cache.parent.glob(f"{kind}@*.pickle"))


def cached_part(folder: str, name: str, key: str | None, load: Callable[[], T], kept: type[T]) -> T:
    """`load()`, kept as `name` among the parts derived from one loaded object (`key`, its
    content_key): the parts of one key share a folder, which replaces the last key's."""
    root = cache_root()
    if root is None or key is None:
        return load()
    here = root / "loaded" / f"{folder}@{key}"
    older = [] if here.is_dir() else (root / "loaded").glob(f"{folder}@*")
    part = hashlib.sha256(name.encode()).hexdigest()[:32]
    return _through(here / f"{part}.pickle", load, kept, older=older)


def _through(cache: Path, load: Callable[[], T], kept: type[T], older: Iterable[Path]) -> T:
    """The object kept in `cache`, else `load()`, kept there; `older` versions are removed."""
    collecting = gc.isenabled()
    gc.disable()  # thousands of new objects, none of them garbage: no passes while they come
    try:
        obj = pickle.loads(cache.read_bytes())
    except _FAILED:
        obj = None  # absent, or written by other code: load afresh and keep
    finally:
        if collecting:
            gc.enable()
    if isinstance(obj, kept):
        return obj
    obj = load()
    try:
        stale = [path for path in older if path != cache]
        blob = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}")
        tmp.write_bytes(blob)
        tmp.replace(cache)
        for path in stale:  # earlier code or file versions
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        pass  # a read-only cache or an object pickle cannot hold: load again next time
    return obj
