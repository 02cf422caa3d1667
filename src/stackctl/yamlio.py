"""The one ruamel.yaml setup: round-trip loading with line numbers, deterministic dumping."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from stackctl.errors import InputError, SourceLoc

M = TypeVar("M", bound=BaseModel)


def _loader() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml


def _dumper() -> YAML:
    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _cache_file(raw: bytes) -> Path | None:
    root = os.environ.get("STACKCTL_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    base = Path(root) if root else Path.home() / ".cache"
    if not root and not Path.home().is_dir():
        return None
    return base / "stackctl" / "yaml" / f"{hashlib.sha256(raw).hexdigest()}.json"


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


def read_yaml(path: Path, *, error: type[InputError] = InputError) -> Any:
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
    cache = _cache_file(raw)
    data = _cached(cache)
    if data is not None:
        return data
    data = parse_yaml(text, path, error=error)
    _store(cache, data)
    return data


def parse_yaml(text: str, path: Path, *, error: type[InputError] = InputError) -> Any:
    try:
        return _loader().load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        col = mark.column + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"invalid YAML: {problem}", source=SourceLoc(path, line, col)) from None


def locate(data: Any, loc: tuple[int | str, ...]) -> tuple[int | None, int | None]:
    """1-based line/column of the deepest node on `loc` that the document knows about."""
    line: int | None = None
    col: int | None = None
    node = data
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            pos = node.lc.key(key)
            line, col = pos[0] + 1, pos[1] + 1
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and key < len(node):
            pos = node.lc.item(key)
            line, col = pos[0] + 1, pos[1] + 1
            node = node[key]
        else:
            if isinstance(node, CommentedMap | CommentedSeq) and line is None:
                line, col = node.lc.line + 1, node.lc.col + 1
            break
    return line, col


def validate_yaml(
    model: type[M], data: Any, path: Path, *, error: type[InputError] = InputError
) -> M:
    """Validate loaded YAML against `model`; the first problem names the file and line."""
    try:
        return model.model_validate(plain(data))
    except ValidationError as exc:
        if not isinstance(data, CommentedMap | CommentedSeq) and path.is_file():
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
    buffer = io.StringIO()
    if header:
        buffer.write(header)
    _dumper().dump(data, buffer)
    return buffer.getvalue()
