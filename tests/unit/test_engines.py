from __future__ import annotations

import re
from pathlib import Path

from stackctl.engines import llamacpp

HELP = Path(__file__).resolve().parents[1] / "data" / "engines" / "llama-server-b11434.help.txt"


def _args() -> list[str]:
    return llamacpp.server_args(host="127.0.0.1", port=8080, context=4096, threads=8,
                                flash_attn="on", parallel=2, cache_type_k="q8_0",
                                cache_type_v="q8_0", alias="m")  # fmt: skip


def test_server_args_golden() -> None:
    assert _args() == [
        "--host", "127.0.0.1", "--port", "8080", "--ctx-size", "4096", "--threads", "8",
        "--flash-attn", "on", "--parallel", "2", "--cache-type-k", "q8_0",
        "--cache-type-v", "q8_0", "--alias", "m",
    ]  # fmt: skip


def test_every_flag_is_spelt_as_the_pinned_build_spells_it() -> None:
    """`llama-server --help` of b11434, recorded from the build: flags were renamed in 2026."""
    known = set(re.findall(r"(?<![\w-])(--?[a-z][a-z0-9-]*)", HELP.read_text()))
    flags = [a for a in _args() if a.startswith("-")] + ["--model"]
    assert [f for f in flags if f not in known] == []
    assert "--no-mmap" not in known  # removed upstream: never emit it for this build


def test_build_key_follows_source_and_flags() -> None:
    key = llamacpp.build_key("a" * 64, "u", ["-DX=1"], ["llama-server"])
    assert key == llamacpp.build_key("a" * 64, "u", ["-DX=1"], ["llama-server"])
    assert key != llamacpp.build_key("a" * 64, "u", ["-DX=2"], ["llama-server"])
    assert key != llamacpp.build_key("b" * 64, "u", ["-DX=1"], ["llama-server"])
