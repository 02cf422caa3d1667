"""The one ruamel.yaml setup: round-trip loading with line numbers, deterministic dumping."""

from __future__ import annotations

import io
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


def read_yaml(path: Path, *, error: type[InputError] = InputError) -> Any:
    """Parse a YAML file; syntax errors become `error` naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read: {exc}") from None
    return parse_yaml(text, path, error=error)


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
