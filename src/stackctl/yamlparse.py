"""The ruamel.yaml side of stackctl.yamlio: bounded round-trip parsing, line numbers and
dumping. Imported only when a file is really parsed or written (an unchanged file comes back
from yamlio's JSON cache), so commands that only read the catalog skip ruamel's import."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer, ComposerError, MaxDepthExceededError
from ruamel.yaml.error import StreamMark, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode
from ruamel.yaml.reader import ReaderError

from stackctl.errors import InputError, SourceLoc
from stackctl.yamlio import LIMIT_HINT, MAX_ALIAS_NODES, MAX_DEPTH


class LimitError(ComposerError):
    """A document over one of yamlio's limits; a YAMLError, so it reports file:line."""


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


def loader() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    yaml.max_depth = MAX_DEPTH
    yaml.Composer = _BoundedComposer
    return yaml


def dumper() -> YAML:
    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


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


def parse_text(text: str, path: Path, error: type[InputError]) -> Any:
    """Parse checked YAML text; any problem is `error` naming file:line."""
    try:
        _check_flow_depth(text)
        return loader().load(text)
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


def is_round_trip(data: Any) -> bool:
    """Whether `data` came from the parser (it knows its line numbers), not from the cache."""
    return isinstance(data, CommentedMap | CommentedSeq)


def new_map() -> Any:
    """An empty mapping that dumps in insertion order."""
    return CommentedMap()
