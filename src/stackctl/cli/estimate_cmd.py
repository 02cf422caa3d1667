"""`stackctl estimate`: memory per device, fit and speed for a model on some hardware.

Not fitting is an answer (exit 0, with the shortfall per device); bad input exits 2.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

from stackctl.cli.output import print_json
from stackctl.errors import EXIT_OK, EstimateError, HardwareError
from stackctl.estimate import estimate
from stackctl.models.estimate import Backend, Estimate, EstimateRequest
from stackctl.models.hardware import HardwareProfile

MAX_CTX = 1 << 24
CACHE_TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"]
MIB = 1 << 20
BACKENDS: dict[str, Backend] = {
    "cuda": "cuda", "rocm": "rocm", "vulkan": "vulkan", "metal": "metal", "cpu": "cpu"
}  # fmt: skip


def _hardware_args() -> Any:
    """The detection issue's --gpu/--system options, once that module exists."""
    try:
        return importlib.import_module("stackctl.cli.hardware_args")
    except ImportError:
        return None


def register(sub: Any) -> None:
    parser = sub.add_parser("estimate", help="predict memory per device and tok/s for a model")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="catalog id or a name people use (qwen3:30b-a3b)")
    source.add_argument("--gguf", help="a local GGUF file: its exact tensor table")
    parser.add_argument("--quant", default="Q4_K_M", help="GGUF quant name (default Q4_K_M)")
    parser.add_argument("--ctx", type=int, default=4096, help="context size (all sequences)")
    parser.add_argument("--cache-type-k", default="f16", choices=CACHE_TYPES)
    parser.add_argument("--cache-type-v", default="f16", choices=CACHE_TYPES)
    parser.add_argument("--parallel", type=int, default=1, help="sequences (-np)")
    parser.add_argument("--ubatch", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--kv-unified", action="store_true")
    parser.add_argument("--swa-full", action="store_true")
    parser.add_argument("--no-flash-attn", action="store_true")
    parser.add_argument("--engine", default="llama.cpp", choices=["llama.cpp"])
    parser.add_argument("--backend", default=None, choices=list(BACKENDS))
    parser.add_argument("--ngl", default="auto", help="GPU layers or 'auto'")
    parser.add_argument("--n-cpu-moe", default="0", help="expert layers kept on the CPU, or 'auto'")
    parser.add_argument("--cpu-moe", action="store_true", help="all experts on the CPU")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--depth", type=int, default=0, help="tokens already in the cache")
    hw_args = _hardware_args()
    if hw_args is not None:
        hw_args.add_hardware_options(parser)
    else:
        parser.add_argument("--hardware", required=True, help="a HardwareProfile YAML")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def _count(value: str, name: str, *, low: int = 0, high: int = MAX_CTX) -> int | str:
    if value == "auto":
        return value
    try:
        number = int(value)
    except ValueError:
        raise EstimateError(f"--{name} must be a number or 'auto', not '{value}'") from None
    if not low <= number <= high:
        raise EstimateError(f"--{name} {number} is out of range [{low}, {high}]")
    return number


def _check_numbers(args: argparse.Namespace) -> None:
    checks = [("ctx", args.ctx, 1, MAX_CTX), ("parallel", args.parallel, 1, 1024),
              ("ubatch", args.ubatch, 1, 65536), ("batch", args.batch, 1, 1 << 20),
              ("depth", args.depth, 0, MAX_CTX)]  # fmt: skip
    if args.threads is not None:
        checks.append(("threads", args.threads, 1, 4096))
    for name, value, low, high in checks:
        if not low <= value <= high:
            raise EstimateError(f"--{name} {value} is out of range [{low}, {high}]")


def _load_hardware(args: argparse.Namespace) -> HardwareProfile:
    hw_args = _hardware_args()
    if hw_args is not None:
        profile: HardwareProfile = hw_args.hardware_from_args(args)
        return profile
    from stackctl.spec import load_profile

    path = Path(args.hardware)
    if not path.is_file():
        raise HardwareError(f"{path}: no such hardware profile")
    return load_profile(path)


def build_request(args: argparse.Namespace, hardware: HardwareProfile) -> EstimateRequest:
    _check_numbers(args)
    backend = BACKENDS[args.backend or _default_backend(hardware)]
    return EstimateRequest(
        model=args.model or "",
        quant=args.quant,
        ctx=args.ctx,
        cache_type_k=args.cache_type_k,
        cache_type_v=args.cache_type_v,
        parallel=args.parallel,
        batch=args.batch,
        ubatch=args.ubatch,
        backend=backend,
        ngl=_count(args.ngl, "ngl", high=100000),  # type: ignore[arg-type]
        n_cpu_moe=_count(args.n_cpu_moe, "n-cpu-moe", high=100000),  # type: ignore[arg-type]
        cpu_moe=args.cpu_moe,
        kv_unified=args.kv_unified,
        swa_full=args.swa_full,
        flash_attn=not args.no_flash_attn,
        depth=args.depth,
        threads=args.threads,
        gguf_path=args.gguf,
    )


def _default_backend(hardware: HardwareProfile) -> str:
    if not hardware.accelerators:
        return "cpu"
    vendor = hardware.accelerators[0].vendor
    return {"nvidia": "cuda", "amd": "rocm", "apple": "metal", "intel": "vulkan"}[vendor]


def _summary(result: Estimate) -> str:
    lines = [f"{result.model}: {'fits' if result.fits else 'does NOT fit'}"]
    for d in result.memory.devices:
        budget = f"{d.budget_bytes / MIB:.0f}" if d.budget_bytes is not None else "?"
        line = (f"  {d.device:6} weights {d.weights_bytes / MIB:9.1f}  kv {d.kv_bytes / MIB:8.1f}"
                f"  compute {d.compute_bytes / MIB:7.1f}  total {d.total_bytes / MIB:9.1f}"
                f" / {budget} MiB")  # fmt: skip
        if d.shortfall_bytes:
            line += f"  SHORT by {d.shortfall_bytes / MIB:.0f} MiB"
        lines.append(line)
    s = result.speed
    lines.append(f"  decode {s.tg_tps:.1f} tok/s ({s.tg_tps_range[0]:.1f}-{s.tg_tps_range[1]:.1f})"
                 f", prefill {s.pp_tps:.0f} tok/s ({s.pp_tps_range[0]:.0f}-{s.pp_tps_range[1]:.0f})"
                 f", depth {s.depth}, ttft {s.ttft_s:.2f} s")  # fmt: skip
    lines += [f"  basis: {b}" for b in result.basis]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    hardware = _load_hardware(args)
    result = estimate(build_request(args, hardware), hardware)
    if args.json:
        print_json(result)
    else:
        print(_summary(result))
    return EXIT_OK
