"""The one ruamel.yaml setup: round-trip loading with line numbers, deterministic dumping."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer, ComposerError, MaxDepthExceededError
from ruamel.yaml.error import StreamMark, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.reader import ReaderError

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


class LimitError(ComposerError):
    """A document over one of the limits above; a YAMLError, so it reports file:line."""


class _BoundedComposer(Composer):
    """ruamel's composer, counting what each alias expands to (a "billion laughs" is refused
    at the first alias that would blow the budget) and refusing an alias to itself."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self.alias_nodes = 0
        self.sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.parser.check_event(AliasEvent):
            event = self.parser.peek_event()
            target = self.anchors.get(event.anchor)
            if target is not None:
                if isinstance(target, MappingNode | SequenceNode) and target.end_mark is None:
                    raise LimitError(
                        None, None, f"alias *{event.anchor} refers to itself", event.start_mark
                    )
                self.alias_nodes += self._size(target)
                if self.alias_nodes > MAX_ALIAS_NODES:
                    raise LimitError(
                        None,
                        None,
                        f"aliases expand to more than {MAX_ALIAS_NODES} nodes (an alias bomb?)",
                        event.start_mark,
                    )
        return super().compose_node(parent, index)

    def _size(self, node: Node) -> int:
        """Nodes in `node` with every alias expanded; memoised, so shared subtrees cost once."""
        known = self.sizes.get(id(node))
        if known is not None:
            return known
        size = 1
        if isinstance(node, SequenceNode):
            size += sum(self._size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            size += sum(self._size(k) + self._size(v) for k, v in node.value)
        self.sizes[id(node)] = size
        return size


_FLOW_TOKENS = re.compile(r"""[\[\]{}\n#]|(?:(?<=[\s\[{,:])|^)["']""", re.MULTILINE)


def _check_flow_depth(text: str) -> None:
    """Refuse `[[[[...` before ruamel's scanner sees it: the scanner keeps a possible simple key
    per open bracket and re-checks them all on every token, quadratic in the nesting."""
    depth = 0
    line = 0
    skip_to = 0
    for match in _FLOW_TOKENS.finditer(text):
        token, at = match.group(), match.start()
        if token == "\n":
            line += 1
        if at < skip_to:
            continue
        if token in "\"'":
            end = text.find(token, at + 1)
            skip_to = len(text) if end < 0 else end + 1
        elif token == "#":
            end = text.find("\n", at)
            skip_to = len(text) if end < 0 else end
        elif token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                column = at - text.rfind("\n", 0, at) - 1
                raise MaxDepthExceededError(
                    None, None, "too deep", StreamMark("", at, line, column)
                )
        elif token in "]}":
            depth = max(depth - 1, 0)


def _loader() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    yaml.max_depth = MAX_DEPTH
    yaml.Composer = _BoundedComposer
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


def _where(text: str, exc: YAMLError) -> tuple[int | None, int | None]:
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return mark.line + 1, mark.column + 1
    if isinstance(exc, ReaderError) and isinstance(exc.position, int):
        before = text[: exc.position]
        return before.count("\n") + 1, exc.position - (before.rfind("\n") + 1) + 1
    return None, None


def _problem(exc: YAMLError) -> str:
    if isinstance(exc, MaxDepthExceededError):
        return f"nested more than {MAX_DEPTH} levels deep"
    if isinstance(exc, ReaderError):
        char = exc.character
        shown = f"U+{char:04X}" if isinstance(char, int) else repr(char)
        return f"unacceptable character {shown}: {exc.reason}"
    return str(getattr(exc, "problem", None) or exc).splitlines()[0]


def parse_yaml(
    text: str,
    path: Path,
    *,
    error: type[InputError] = InputError,
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> Any:
    """Parse YAML text within the limits above; any problem is `error` naming file:line."""
    _check_size(len(text), path, error, max_bytes)
    try:
        _check_flow_depth(text)
        return _loader().load(text)
    except YAMLError as exc:
        line, col = _where(text, exc)
        raise error(
            f"invalid YAML: {_problem(exc)}",
            source=SourceLoc(path, line, col),
            hint=LIMIT_HINT
            if isinstance(exc, LimitError | MaxDepthExceededError)
            else "check the YAML syntax at that line",
        ) from None
    except ValueError as exc:  # a value ruamel cannot build, e.g. an integer of 5000 digits
        raise error(
            f"invalid YAML value: {str(exc).split(';')[0]}",
            source=SourceLoc(path),
            hint="numbers must fit the field they set",
        ) from None


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
