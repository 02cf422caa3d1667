"""The one YAML setup: round-trip loading with line numbers, deterministic dumping.

ruamel itself lives in stackctl.yamlparse, imported on first real parse or dump: a file
unchanged since its last parse comes from a JSON cache without it."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from stackctl.errors import InputError, SourceLoc

M = TypeVar("M", bound=BaseModel)

# Limits on what one YAML document may cost. Our largest file (the catalog's hardware table) is
# ~32 KB, nests 6 deep and uses no aliases; these leave room for hand-written specs and refuse
# a hostile file in well under a second instead of hanging or overflowing the stack.
MAX_DOCUMENT_BYTES = 256 << 10  # parse time is linear in size: ~3 s at this size, worst case
# Datasets this project ships and reads itself (public benchmark rows), not user input.
MAX_DATASET_BYTES = 4 << 20
MAX_DEPTH = 64
MAX_ALIAS_NODES = 10_000  # nodes that aliases may add to the document, all aliases together
LIMIT_HINT = "stackctl refuses YAML this deep or this repetitive; write the values out plainly"


def cache_root() -> Path | None:
    """stackctl's folder in the user's cache ($STACKCTL_CACHE_DIR, else $XDG_CACHE_HOME, else
    ~/.cache), or None when there is no home to keep one in."""
    root = os.environ.get("STACKCTL_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    if not root and not Path.home().is_dir():
        return None
    return (Path(root) if root else Path.home() / ".cache") / "stackctl"


def _cache_file(raw: bytes) -> Path | None:
    root = cache_root()
    if root is None:
        return None
    return root / "yaml" / f"{hashlib.sha256(raw).hexdigest()}.json"


def _cached(cache: Path | None) -> Any:
    if cache is None:
        return None
    try:
        return json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _store(cache: Path | None, data: Any) -> None:
    """Keep the parse of an unchanged file: ruamel's round-trip parser is slow on the catalog."""
    if cache is None:
        return
    try:
        text = json.dumps(plain(data), ensure_ascii=False)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(cache)
    except (OSError, TypeError, ValueError):
        return  # a read-only home or a value JSON cannot hold (dates): just parse next time


def read_yaml(
    path: Path, *, error: type[InputError] = InputError, max_bytes: int = MAX_DOCUMENT_BYTES
) -> Any:
    """Parse a YAML file; syntax errors become `error` naming the file and line.

    An unchanged file comes back from a JSON cache of its earlier parse (plain dicts and lists,
    so `validate_yaml` re-reads the file for line numbers only when it has an error to report).
    """
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from None
    _check_size(len(raw), path, error, max_bytes)
    cache = _cache_file(raw)
    data = _cached(cache)
    if data is not None:
        return data
    data = parse_yaml(text, path, error=error, max_bytes=max_bytes)
    _store(cache, data)
    return data


def _check_size(
    size: int, path: Path, error: type[InputError], limit: int = MAX_DOCUMENT_BYTES
) -> None:
    if size > limit:
        raise error(
            f"{path}: {size} bytes is more than the {limit} a YAML file may have",
            hint="stack, hardware and lock files are a few KB; is this the right file?",
        )


def parse_yaml(
    text: str,
    path: Path,
    *,
    error: type[InputError] = InputError,
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> Any:
    """Parse YAML text within the limits above; any problem is `error` naming file:line."""
    _check_size(len(text), path, error, max_bytes)
    from stackctl.yamlparse import parse_text

    return parse_text(text, path, error)


def locate(data: Any, loc: tuple[int | str, ...]) -> tuple[int | None, int | None]:
    """1-based line/column of the deepest node on `loc` that the document knows about."""
    from stackctl.yamlparse import locate as locate_node

    return locate_node(data, loc)


def validate_yaml(
    model: type[M], data: Any, path: Path, *, error: type[InputError] = InputError
) -> M:
    """Validate loaded YAML against `model`; the first problem names the file and line."""
    try:
        return model.model_validate(plain(data))
    except ValidationError as exc:
        from stackctl.yamlparse import is_round_trip

        if not is_round_trip(data) and path.is_file():
            data = parse_yaml(path.read_text(encoding="utf-8"), path, error=error)
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        line, col = locate(data, loc)
        field = ".".join(str(part) for part in loc) or "(top level)"
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = f"unknown key '{loc[-1]}'"
        more = len(exc.errors()) - 1
        details = [f"{more} more problem(s) in this file"] if more else []
        raise error(
            f"{field}: {message}", source=SourceLoc(path, line, col), details=details
        ) from None


def plain(data: Any) -> Any:
    """ruamel round-trip containers to plain dicts and lists."""
    if isinstance(data, dict):
        return {str(k): plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [plain(v) for v in data]
    return data


def dump_yaml(data: Any, *, header: str = "") -> str:
    """Deterministic YAML text: key order as given, block style, no timestamps."""
    from stackctl.yamlparse import dumper

    buffer = io.StringIO()
    if header:
        buffer.write(header)
    dumper().dump(data, buffer)
    return buffer.getvalue()
