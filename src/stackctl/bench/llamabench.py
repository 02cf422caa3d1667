"""llama-bench output (JSON, JSONL, CSV, markdown) and our own export, read into BenchRows.

Every row is parsed on its own: a bad row is reported with its line number and the good ones
still come through. Rows that name no hardware take it from `hardware` (the --hardware,
--gpu or --cpu given to `bench import`); without either they are refused.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from stackctl.bench.models import BenchRow, RowFlags, RowHardware

_QUANT = re.compile(r"\b(MXFP4|BF16|F16|F32|I?Q\d(?:_[0-9A-Z]+)*)\b(?:\s*-\s*(\w+))?", re.I)
_SIZE_SUFFIX = {"medium": "_M", "small": "_S", "large": "_L", "extra": "_XS"}
_TEST = re.compile(r"^(pp|tg)(\d+)(?:\s*@\s*d(\d+))?$")
_BACKENDS = {
    "cpu": "cpu",
    "cuda": "cuda",
    "rocm": "rocm",
    "hip": "rocm",
    "vulkan": "vulkan",
    "metal": "metal",
    "mtl": "metal",
    "sycl": "sycl",
}


@dataclass
class ParseResult:
    rows: list[tuple[int, BenchRow]] = field(default_factory=list)  # (line, row)
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line, why)


class RowError(ValueError):
    """One row cannot be read; the message says why."""


def quant_of(text: str | None) -> str | None:
    """'gemma3 270M Q4_K - Medium' -> 'Q4_K_M'; file names ('...-Q8_0.gguf') too."""
    if not text:
        return None
    match = _QUANT.search(text)
    if match is None:
        return None
    name = match.group(1).upper()
    size = (match.group(2) or "").lower()
    return name + _SIZE_SUFFIX.get(size, "") if name.endswith("_K") else name


def backend_of(text: str) -> str:
    for part in re.split(r"[,+/ ]+", text.strip().lower()):
        if part in _BACKENDS:
            return _BACKENDS[part]
    raise RowError(f"backend {text!r} is not one of cpu, cuda, rocm, vulkan, metal, sycl")


def _int(value: Any) -> int | None:
    if value in (None, ""):
        return None
    return int(float(value))


def _float(value: Any) -> float | None:
    if value in (None, ""):
        return None
    return float(value)


def _bool(value: Any) -> bool | None:
    if value in (None, ""):
        return None
    return str(value).strip().lower() in ("1", "true", "on", "yes")


def _hardware(raw: dict[str, Any], fallback: RowHardware | None) -> RowHardware:
    gpu = (raw.get("gpu_info") or "").strip() or None
    cpu = (raw.get("cpu_info") or "").strip() or None
    if fallback is not None:
        return fallback
    if gpu or cpu:
        n_gpus = len([g for g in (gpu or "").split(",") if g.strip()])
        return RowHardware(gpu=gpu.split(",")[0].strip() if gpu else None, cpu=cpu, n_gpus=n_gpus)
    raise RowError("the row names no hardware: give --hardware, --gpu or --cpu")


def row_from_llama_bench(
    raw: dict[str, Any],
    *,
    source: str,
    ref: str | None,
    hardware: RowHardware | None,
    models: dict[str, str],
) -> BenchRow:
    """One llama-bench JSON/CSV record (its own field names) as a BenchRow."""
    try:
        n_prompt = _int(raw.get("n_prompt")) or 0
        n_gen = _int(raw.get("n_gen")) or 0
        if not (n_prompt or n_gen):
            raise RowError("n_prompt and n_gen are both 0")
        try:
            tps = _float(raw.get("avg_ts"))
        except ValueError:
            tps = None
        if tps is None or tps <= 0:
            raise RowError(f"avg_ts {raw.get('avg_ts')!r} is not a positive rate")
        filename = str(raw.get("model_filename") or "").rsplit("/", 1)[-1] or None
        size = _float(raw.get("model_size"))
        params = _float(raw.get("model_n_params"))
        build = raw.get("build_number") or raw.get("build_commit")
        return BenchRow(
            source=source,
            ref=ref,
            hardware=_hardware(raw, hardware),
            backend=backend_of(str(raw.get("backends") or "cpu")),  # type: ignore[arg-type]
            build=f"b{build}" if isinstance(build, int) or str(build).isdigit() else build,
            model=models.get(filename or ""),
            model_name=filename or raw.get("model_type"),
            quant=quant_of(raw.get("model_type")) or quant_of(filename),
            size_gib=round(size / 2**30, 3) if size else None,
            params_b=round(params / 1e9, 3) if params else None,
            ngl=_int(raw.get("n_gpu_layers")),
            flags=RowFlags(
                fa=_bool(raw.get("flash_attn")),
                threads=_int(raw.get("n_threads")),
                ubatch=_int(raw.get("n_ubatch")),
                batch=_int(raw.get("n_batch")),
                type_k=raw.get("type_k") or None,
                type_v=raw.get("type_v") or None,
                n_cpu_moe=_int(raw.get("n_cpu_moe")),
            ),
            test="tg" if n_gen else "pp",
            n_prompt=n_prompt,
            n_gen=n_gen,
            depth=_int(raw.get("n_depth")) or 0,
            tps=tps,
            tps_std=_float(raw.get("stddev_ts")),
        )
    except (ValueError, TypeError, ValidationError) as exc:
        raise RowError(_reason(exc)) from None


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return f"{where}: {first['msg']}"
    return str(exc)


def _json_objects(text: str) -> Iterator[tuple[int, Any]]:
    """(line, value) for each element of a top-level JSON array, or each JSONL line."""
    decoder = json.JSONDecoder()
    stripped = text.lstrip()
    if stripped.startswith("["):
        pos = text.index("[") + 1
        while True:
            while pos < len(text) and text[pos] in " \t\r\n,":
                pos += 1
            if pos >= len(text):
                line = text.count("\n") + 1
                raise RowError(f"line {line}: the JSON array ends without ']' (truncated?)")
            if text[pos] == "]":
                return
            line = text.count("\n", 0, pos) + 1
            try:
                value, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                raise RowError(f"line {exc.lineno}: not JSON: {exc.msg}") from None
            yield line, value
    for number, line_text in enumerate(text.splitlines(), 1):
        if line_text.strip():
            try:
                yield number, json.loads(line_text)
            except json.JSONDecodeError as exc:
                yield number, RowError(f"not JSON: {exc.msg}")


def _export_rows(text: str) -> Iterator[tuple[int, Any]] | None:
    """Our own export ({"rows": [...]}) with the line each row starts on, else None."""
    if not text.lstrip().startswith("{"):
        return None
    data = json.loads(text)
    if not isinstance(data, dict) or "rows" not in data:
        return None
    rows_at = text.index('"rows"')
    return _json_objects(text[rows_at + text[rows_at:].index("[") :])


def parse_text(
    text: str, *, source: str, hardware: RowHardware | None, models: dict[str, str]
) -> ParseResult:
    """Any of the formats, told apart by their first characters."""
    result = ParseResult()
    head = text.lstrip()[:1]
    if head in ("[", "{"):
        _parse_json(text, result, source=source, hardware=hardware, models=models)
    elif head == "|":
        _parse_markdown(text, result, source=source, hardware=hardware, models=models)
    else:
        _parse_csv(text, result, source=source, hardware=hardware, models=models)
    return result


def _parse_json(text: str, out: ParseResult, **kw: Any) -> None:
    offset = 0
    try:
        objects = _export_rows(text)
    except json.JSONDecodeError as exc:
        out.bad.append((exc.lineno, f"not JSON: {exc.msg}"))
        return
    if objects is not None:
        offset = text[: text.index('"rows"')].count("\n")
        for line, value in objects:
            _add_public(out, line + offset, value, kw["hardware"])
        return
    try:
        for line, value in _json_objects(text):
            _add_llama_bench(out, line, value, **kw)
    except RowError as exc:
        out.bad.append((0, str(exc)))


def _add_public(out: ParseResult, line: int, value: Any, hardware: RowHardware | None) -> None:
    try:
        if not isinstance(value, dict):
            raise RowError("not an object")
        if hardware is not None and not (value.get("hardware") or {}).get("system"):
            value = {**value, "hardware": hardware.model_dump()}
        row = BenchRow.model_validate(value)
        if row.hardware.key is None:
            raise RowError("the row names no hardware: give --hardware, --gpu or --cpu")
        out.rows.append((line, row))
    except (RowError, ValidationError) as exc:
        out.bad.append((line, _reason(exc)))


def _add_llama_bench(out: ParseResult, line: int, value: Any, **kw: Any) -> None:
    try:
        if isinstance(value, Exception):
            raise value
        if not isinstance(value, dict):
            raise RowError("not an object")
        out.rows.append((line, row_from_llama_bench(value, ref=None, **kw)))
    except RowError as exc:
        out.bad.append((line, str(exc)))


def _parse_csv(text: str, out: ParseResult, **kw: Any) -> None:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "avg_ts" not in reader.fieldnames:
        out.bad.append((1, "not llama-bench CSV (no avg_ts column), JSON or markdown"))
        return
    for record in reader:
        try:
            out.rows.append((reader.line_num, row_from_llama_bench(record, ref=None, **kw)))
        except RowError as exc:
            out.bad.append((reader.line_num, str(exc)))


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _markdown_record(head: list[str], cells: list[str]) -> dict[str, Any]:
    """A markdown table row in llama-bench's JSON field names."""
    cell = dict(zip(head, cells, strict=True))
    test = _TEST.match(cell.get("test", "").replace(" ", ""))
    if test is None:
        raise RowError(f"test {cell.get('test')!r} is not ppN, tgN or 'ppN @ dN'")
    n = int(test.group(2))
    rate = cell.get("t/s", "").split("±")
    return {
        "model_type": cell.get("model"),
        "backends": cell.get("backend", "cpu"),
        "n_threads": cell.get("threads"),
        "n_gpu_layers": cell.get("ngl"),
        "n_ubatch": cell.get("n_ubatch"),
        "n_batch": cell.get("n_batch"),
        "type_k": cell.get("type_k"),
        "type_v": cell.get("type_v"),
        "flash_attn": cell.get("fa"),
        "n_prompt": n if test.group(1) == "pp" else 0,
        "n_gen": n if test.group(1) == "tg" else 0,
        "n_depth": test.group(3) or 0,
        "avg_ts": rate[0].strip(),
        "stddev_ts": rate[1].strip() if len(rate) > 1 else None,
    }


def _parse_markdown(text: str, out: ParseResult, **kw: Any) -> None:
    head: list[str] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip().startswith("|"):
            continue
        cells = _cells(line)
        if head is None:
            head = cells
            continue
        if all(set(c) <= set("-: ") for c in cells):
            continue
        try:
            if len(cells) != len(head):
                raise RowError(f"{len(cells)} cells, the header has {len(head)}")
            record = _markdown_record(head, cells)
            out.rows.append((number, row_from_llama_bench(record, ref=None, **kw)))
        except RowError as exc:
            out.bad.append((number, str(exc)))
