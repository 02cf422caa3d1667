"""Hostile input to the parsers: YAML files and GGUF headers give errors, never hangs, tracebacks
or unbounded memory. Each example runs under a time and allocation budget."""

from __future__ import annotations

import struct
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackctl.errors import EstimateError, InputError, SpecError
from stackctl.estimate.catalog import EstimateCatalog, load_estimate_catalog
from stackctl.estimate.gguf import GGUF_MAGIC, read_gguf
from stackctl.estimate.shapes import write_catalog_shape
from stackctl.models.lock import Lockfile
from stackctl.models.spec import StackSpec
from stackctl.resources import catalog_dir
from stackctl.yamlio import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    parse_yaml,
    validate_yaml,
)

SECONDS = 5.0  # generous: tracemalloc and a shared CPU slow every parse
PEAK_BYTES = 64 << 20
FUZZ = settings(
    max_examples=60,
    deadline=None,  # the budget below is ours, so a slow shared CPU does not flake
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SPEC = Path("fuzz/stack.yaml")


@contextmanager
def bounded() -> Iterator[None]:
    """Time and Python-heap budget for one parse."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        yield
    finally:
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert elapsed < SECONDS, f"took {elapsed:.1f}s"
        assert peak < PEAK_BYTES, f"peak allocation {peak >> 20} MiB"


def _load_as(model: type[StackSpec] | type[Lockfile], text: str) -> None:
    """What the CLI does with a stack or lock file, short of reading it from disk."""
    problem: InputError | None = None
    with bounded():
        try:
            data = parse_yaml(text, SPEC, error=SpecError)
            if isinstance(data, dict):
                validate_yaml(model, data, SPEC, error=SpecError)
        except InputError as exc:
            problem = exc
    if problem is not None:
        assert problem.message
        assert "\n" not in problem.message
        assert problem.source is None or problem.source.path == SPEC


# --- YAML ---------------------------------------------------------------------------------

scalars = st.one_of(
    st.text(max_size=40),
    st.integers(),
    st.just("9" * 5000),
    st.just("1e999999"),
    st.just("-.inf"),
    st.just("0x" + "f" * 300),
    st.just("\x00"),
    st.just("\ud7ff\ue000\U0010ffff"),
    st.just("!!python/object:os.system"),
    st.just("{{ lookup('pipe', 'id') }}"),
    st.just("$(id)"),
)


def _quoted(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) and not value.isdigit() else str(value)


@st.composite
def stack_like(draw: st.DrawFn) -> str:
    """A stack file with hostile values in real keys."""
    keys = ["name", "workload", "context", "users", "model", "hardware", "x-unknown", "<<"]
    lines = []
    for key in draw(st.lists(st.sampled_from(keys), min_size=1, max_size=6)):
        value = draw(scalars)
        lines.append(f"{key}: {_quoted(value) if draw(st.booleans()) else value}")
    return "\n".join(lines) + "\n"


def alias_bomb(levels: int, width: int) -> str:
    lines = ['a0: &a0 "lol"']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\nname: bomb\n"


def nested(depth: int, flow: bool) -> str:
    if flow:
        return "name: " + "[" * depth + "]" * depth + "\n"
    return "".join(f"{'  ' * i}k{i}:\n" for i in range(depth)) + "  " * depth + "leaf: 1\n"


@FUZZ
@given(st.text(max_size=300))
def test_any_text_is_an_error_or_a_spec(text: str) -> None:
    _load_as(StackSpec, text)


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_decoded_are_an_error_or_a_spec(raw: bytes) -> None:
    _load_as(StackSpec, raw.decode("latin-1"))


@FUZZ
@given(stack_like())
def test_hostile_values_in_stack_keys(text: str) -> None:
    _load_as(StackSpec, text)


@FUZZ
@given(stack_like())
def test_hostile_values_as_a_lockfile(text: str) -> None:
    _load_as(Lockfile, text)


@FUZZ
@given(st.integers(2, 12), st.integers(2, 12))
def test_alias_bombs_are_refused_fast(levels: int, width: int) -> None:
    text = alias_bomb(levels, width)
    size, added = 1, 0  # nodes in a{i}, and nodes all aliases add when expanded
    for _ in range(levels):
        added += width * size
        size = 1 + width * size
    with bounded():
        if added <= MAX_ALIAS_NODES:
            parse_yaml(text, SPEC)
            return
        with pytest.raises(InputError, match="alias bomb") as caught:
            parse_yaml(text, SPEC)
    assert caught.value.source is not None
    assert caught.value.source.line is not None


@FUZZ
@given(st.integers(1, 400), st.booleans())
def test_deep_nesting_is_refused_with_a_line(depth: int, flow: bool) -> None:
    text = nested(depth, flow)
    with bounded():
        if depth <= MAX_DEPTH - 2:  # the mapping around it and the leaf add two levels
            parse_yaml(text, SPEC)
            return
        if depth <= MAX_DEPTH:
            return
        with pytest.raises(InputError, match=f"more than {MAX_DEPTH} levels") as caught:
            parse_yaml(text, SPEC)
    assert caught.value.source is not None
    assert caught.value.source.line is not None


def test_alias_to_itself_is_refused() -> None:
    with pytest.raises(InputError, match=r"alias \*a refers to itself"):
        parse_yaml("a: &a [1, *a]\n", SPEC)


def test_oversized_document_is_refused_before_parsing() -> None:
    with bounded(), pytest.raises(InputError, match="more than the"):
        parse_yaml("#" * (MAX_DOCUMENT_BYTES + 1), SPEC)


def test_nul_byte_names_its_line() -> None:
    with pytest.raises(InputError, match="U\\+0000") as caught:
        parse_yaml("name: ok\nworkload: ch\x00at\n", SPEC)
    assert str(caught.value.source) == "fuzz/stack.yaml:2:13"


# --- GGUF ---------------------------------------------------------------------------------


@cache
def _catalog() -> EstimateCatalog:
    return load_estimate_catalog(catalog_dir())


@cache
def _real_header() -> tuple[bytes, int]:
    """The header of a shape-only GGUF with real tensor shapes, and the whole file's size."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "shape.gguf"
        write_catalog_shape(path, "gemma-3-270m", "Q4_K_M", _catalog())
        size = path.stat().st_size
        header_end = read_gguf(path).data_offset
        with path.open("rb") as handle:
            return handle.read(header_end), size


def _read_bytes(raw: bytes, sparse_size: int = 0) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.gguf"
        with path.open("wb") as handle:
            handle.write(raw)
            handle.truncate(max(sparse_size, len(raw)))
        problem = ""
        with bounded():
            try:
                read_gguf(path)
            except EstimateError as exc:
                problem = exc.message
        assert not problem or problem.startswith(str(path))


def test_the_real_header_reads() -> None:
    header, size = _real_header()
    _read_bytes(header, size)


@FUZZ
@given(st.data())
def test_truncated_header(data: st.DataObject) -> None:
    header, _ = _real_header()
    cut = data.draw(st.integers(0, len(header) - 1))
    with pytest.raises(EstimateError, match=r"truncated|magic"):
        _read_bytes_strict(header[:cut])


def _read_bytes_strict(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cut.gguf"
        path.write_bytes(raw)
        with bounded():
            read_gguf(path)


@FUZZ
@given(st.data())
def test_corrupted_header_bytes(data: st.DataObject) -> None:
    header, size = _real_header()
    mutated = bytearray(header)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(mutated) - 1))
        mutated[at] = data.draw(st.integers(0, 255))
    _read_bytes(bytes(mutated), size)


huge = st.sampled_from([0, 1, 2**31, 2**32 - 1, 2**40, 2**63, 2**64 - 1])


@FUZZ
@given(
    st.sampled_from([GGUF_MAGIC, b"GGUF"[::-1], b"\x00\x00\x00\x00", b"GGML"]),
    st.sampled_from([1, 2, 3, 4, 2**32 - 1]),
    huge,
    huge,
    st.binary(max_size=200),
)
def test_made_up_headers(magic: bytes, version: int, tensors: int, kvs: int, rest: bytes) -> None:
    _read_bytes(magic + struct.pack("<IQQ", version, tensors, kvs) + rest)


def _kv(key: bytes, type_id: int, payload: bytes) -> bytes:
    return struct.pack("<Q", len(key)) + key + struct.pack("<I", type_id) + payload


@FUZZ
@given(st.integers(0, 20), huge, st.integers(0, 3))
def test_huge_string_and_array_counts(type_id: int, count: int, nest: int) -> None:
    payload = struct.pack("<IQ", 9, count) * nest + struct.pack("<IQ", type_id, count)
    body = _kv(b"general.x", 9 if nest else 8, payload if nest else struct.pack("<Q", count))
    _read_bytes(GGUF_MAGIC + struct.pack("<IQQ", 3, 0, 1) + body)


@pytest.mark.parametrize("alignment", [0, -1, "x"])
def test_bad_alignment_is_an_error(alignment: int | str) -> None:
    if isinstance(alignment, str):
        data = alignment.encode()
        body = _kv(b"general.alignment", 8, struct.pack("<Q", len(data)) + data)
    else:
        body = _kv(b"general.alignment", 5, struct.pack("<i", alignment))
    with pytest.raises(EstimateError, match=r"general\.alignment"):
        _read_bytes_strict(GGUF_MAGIC + struct.pack("<IQQ", 3, 0, 1) + body)


def _tensor_info(name: bytes) -> bytes:
    return struct.pack("<Q", len(name)) + name + struct.pack("<IQIQ", 1, 32, 0, 0)


def test_a_repeated_tensor_name_fails_at_once() -> None:
    """A mutated tensor count over zero bytes reads as thousands of tensors named '': the
    first repeat stops the parse (llama.cpp's reader refuses repeated names too)."""
    header = GGUF_MAGIC + struct.pack("<IQQ", 3, 40000, 0) + _tensor_info(b"a") * 2
    with pytest.raises(EstimateError, match="'a' appears twice"):
        _read_bytes_strict(header + bytes(24 * 40000))


def test_a_tensor_count_beyond_any_model_is_refused() -> None:
    with pytest.raises(EstimateError, match="implausible counts"):
        _read_bytes_strict(GGUF_MAGIC + struct.pack("<IQQ", 3, 1 << 17, 0))
