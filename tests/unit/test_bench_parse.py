"""llama-bench output read into the shared row schema, from real runs of the pinned build
(tests/data/bench/llama-bench.{json,csv,md}: Gemma 3 270M Q4_K_M, this CPU, b11434), and the
output checks' verdicts on real answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackctl.bench.check_output import PASSKEY, Case, judge, looks_broken
from stackctl.bench.llamabench import backend_of, parse_text, quant_of
from stackctl.bench.models import RowHardware

DATA = Path(__file__).resolve().parent.parent / "data" / "bench"
MODELS = {"gemma-3-270m-q4_k_m.gguf": "gemma-3-270m"}


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_machine_formats_carry_hardware_and_flags(fmt: str) -> None:
    parsed = parse_text(
        (DATA / f"llama-bench.{fmt}").read_text(), source="run", hardware=None, models=MODELS
    )
    assert parsed.bad == []
    rows = [r for _line, r in parsed.rows]
    assert {(r.test, r.depth) for r in rows} == {("pp", 0), ("tg", 0), ("pp", 256), ("tg", 256)}
    for r in rows:
        assert r.model == "gemma-3-270m"
        assert r.quant == "Q4_K_M"
        assert r.backend == "cpu"
        assert r.hardware.cpu
        assert r.flags.threads
        assert r.tps > 0
        assert r.build == "b11434"


def test_markdown_and_json_agree_on_the_tests() -> None:
    hw = RowHardware(system="this-box")
    md = parse_text((DATA / "llama-bench.md").read_text(), source="md", hardware=hw, models=MODELS)
    js = parse_text(
        (DATA / "llama-bench.json").read_text(), source="js", hardware=hw, models=MODELS
    )
    assert md.bad == []
    assert len(md.rows) == len(js.rows) == 4
    for (_a, m), (_b, j) in zip(md.rows, js.rows, strict=True):
        assert (m.test, m.n_prompt, m.n_gen, m.depth, m.quant) == (
            j.test,
            j.n_prompt,
            j.n_gen,
            j.depth,
            j.quant,
        )
        assert m.tps > 0  # separate runs: the rates differ, the shape must not


def test_quant_and_backend_names() -> None:
    assert quant_of("gemma3 270M Q4_K - Medium") == "Q4_K_M"
    assert quant_of("Qwen3.6-27B-Q8_0.gguf") == "Q8_0"
    assert quant_of("llama 8B IQ4_XS - 4.25 bpw") == "IQ4_XS"
    assert backend_of("Metal,BLAS") == "metal"
    assert backend_of("ROCm") == "rocm"


def test_truncated_json_names_the_line() -> None:
    text = (DATA / "llama-bench.json").read_text()
    parsed = parse_text(text[: len(text) // 2 + 100], source="x", hardware=None, models=MODELS)
    assert len(parsed.rows) == 2  # the objects before the cut still come through
    assert parsed.bad
    assert "line" in parsed.bad[-1][1]


COUNT = Case("count", "1, 2, 3, 4, 5, 6,", "7, 8, 9", 12)
RECALL = Case("recall", "...", PASSKEY, 8)


def test_real_answers_of_the_real_model_pass() -> None:
    assert judge(COUNT, " 7, 8, 9, 10", {}).passed
    assert judge(RECALL, " 71432", {}).passed


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty output"),
        ("   \n", "empty output"),
        (" the the the the the the", "repetition loop"),
        ("#$%^&*@!~`{}[]<>|\\", "gibberish"),
        ("caf\ufffd\ufffd", "invalid UTF-8"),
    ],
)
def test_broken_output_is_named(text: str, why: str) -> None:
    assert why in (looks_broken(text) or "")
    assert not judge(COUNT, text, {}).passed


def test_wrong_recall_is_a_recall_failure() -> None:
    verdict = judge(RECALL, " 12345", {})
    assert not verdict.passed
    assert verdict.reason is not None
    assert verdict.reason.startswith("recall failure")
