"""`stackctl estimate`: memory per device, fit and speed for a model on some hardware.

Not fitting is an answer (exit 0, with the shortfall per device); bad input exits 2.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any, get_args

from stackctl.cli.output import ceiling_note, print_json
from stackctl.errors import EXIT_OK, EstimateError, HardwareError
from stackctl.estimate import estimate
from stackctl.models.estimate import Backend, Estimate, EstimateRequest
from stackctl.models.hardware import HardwareProfile

MAX_CTX = 1 << 24
CACHE_TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"]
MIB = 1 << 20
ENGINES = ["llama.cpp", "vllm", "mlx", "ds4"]
BACKENDS: dict[str, Backend] = {name: name for name in get_args(Backend)}


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
    parser.add_argument("--quant", default=None,
                        help="GGUF quant name (default Q4_K_M), or with --engine mlx an MLX "
                        "build (MLX-4bit or 4bit, MLX-8bit or 8bit; default MLX-4bit)")  # fmt: skip
    parser.add_argument("--ctx", type=int, default=4096, help="context size (all sequences)")
    parser.add_argument("--cache-type-k", default="f16", choices=CACHE_TYPES)
    parser.add_argument("--cache-type-v", default="f16", choices=CACHE_TYPES)
    parser.add_argument("--parallel", type=int, default=1, help="sequences (-np)")
    parser.add_argument("--ubatch", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--kv-unified", action="store_true")
    parser.add_argument("--swa-full", action="store_true")
    parser.add_argument("--no-flash-attn", action="store_true")
    parser.add_argument("--no-repack", action="store_true",
                        help="weights in their file layout, no AMX buffer (how stackctl serves "
                        "an AMX CPU: quirk x86-amx-no-repack)")  # fmt: skip
    parser.add_argument(
        "--engine", default="llama.cpp", choices=["llama.cpp", "vllm", "mlx", "ds4"]
    )
    parser.add_argument("--backend", default=None, choices=list(BACKENDS))
    parser.add_argument("--ngl", default="auto", help="GPU layers or 'auto'")
    parser.add_argument("--n-cpu-moe", default="0", help="expert layers kept on the CPU, or 'auto'")
    parser.add_argument("--cpu-moe", action="store_true", help="all experts on the CPU")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--depth", type=int, default=0, help="tokens already in the cache")
    _companion_options(parser)
    hw_args = _hardware_args()
    if hw_args is not None:
        hw_args.add_hardware_options(parser)
    else:
        parser.add_argument("--hardware", required=True, help="a HardwareProfile YAML")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def _companion_options(parser: Any) -> None:
    parser.add_argument("--tensor-split", "-ts", help="GPU proportions, e.g. 3,1")
    parser.add_argument("--override-tensor", "-ot", action="append", default=[],
                        help="llama.cpp -ot 'regex=BUFFER' (repeatable)")  # fmt: skip
    parser.add_argument("--mmproj", help="a multimodal projector GGUF")
    parser.add_argument("--no-mmproj-offload", action="store_true")
    parser.add_argument("--spec-type", default="none", choices=["none", "draft", "mtp"])
    parser.add_argument("--draft-model", help="catalog id of a draft model")
    parser.add_argument("--draft-quant", default="Q8_0")
    parser.add_argument("--draft-gguf", help="a local draft GGUF")
    parser.add_argument("--spec-draft-n", type=int, default=3, help="--spec-draft-n-max")
    parser.add_argument("--spec-acceptance", type=float, default=None,
                        help="per-token acceptance rate (0-1)")  # fmt: skip
    parser.add_argument("--gpu-memory-utilization", type=float, default=None, help="vLLM")


def _split(value: str | None) -> list[float] | None:
    if not value:
        return None
    try:
        parts = [float(v) for v in value.split(",")]
    except ValueError:
        raise EstimateError(f"--tensor-split '{value}': expected numbers like 3,1") from None
    if any(p < 0 for p in parts) or not sum(parts):
        raise EstimateError(f"--tensor-split '{value}': proportions must be >= 0, not all 0")
    return parts


def _fraction(value: float | None, name: str) -> float | None:
    if value is not None and not 0 < value < 1 + (name == "gpu-memory-utilization"):
        raise EstimateError(f"--{name} {value} must be between 0 and 1")
    return value


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
    checks.append(("spec-draft-n", args.spec_draft_n, 1, 64))
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
        quant=args.quant or ("MLX-4bit" if args.engine == "mlx" else "Q4_K_M"),
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
        repack=not args.no_repack,
        depth=args.depth,
        threads=args.threads,
        gguf_path=args.gguf,
        tensor_split=_split(args.tensor_split),
        override_tensor=args.override_tensor,
        mmproj_gguf=args.mmproj,
        mmproj_offload=not args.no_mmproj_offload,
        spec_type=args.spec_type,
        draft_model=args.draft_model,
        draft_quant=args.draft_quant,
        draft_gguf=args.draft_gguf,
        spec_draft_n=args.spec_draft_n,
        spec_acceptance=_fraction(args.spec_acceptance, "spec-acceptance"),
        gpu_memory_utilization=_fraction(args.gpu_memory_utilization, "gpu-memory-utilization"),
        engine=args.engine,
    )


def _default_backend(hardware: HardwareProfile) -> str:
    if not hardware.accelerators:
        return "cpu"
    vendor = hardware.accelerators[0].vendor
    return {"nvidia": "cuda", "amd": "rocm", "apple": "metal", "intel": "vulkan"}[vendor]


def _verdict(result: Estimate) -> str:
    if not result.fits:
        return "does NOT fit"
    unknown = [d.device for d in result.memory.devices if d.budget_bytes is None]
    if unknown:  # nothing to check against there: say so, not a bare "fits"
        return f"fits ({', '.join(unknown)}: no budget known, not checked)"
    return "fits"


def _summary(result: Estimate) -> str:
    lines = [f"{result.model}: {_verdict(result)}"]
    for d in result.memory.devices:
        budget = f"{d.budget_bytes / MIB:.0f}" if d.budget_bytes is not None else "?"
        line = (f"  {d.device:6} weights {d.weights_bytes / MIB:9.1f}  kv {d.kv_bytes / MIB:8.1f}"
                f"  compute {d.compute_bytes / MIB:7.1f}  total {d.total_bytes / MIB:9.1f}"
                f" / {budget} MiB")  # fmt: skip
        if d.shortfall_bytes:
            line += f"  SHORT by {d.shortfall_bytes / MIB:.0f} MiB"
        lines.append(line)
    p = result.placement
    if p is not None:
        where = ", ".join(f"{k} {v}" for k, v in p.layers.items())
        lines.append(f"  placement: -ngl {p.ngl}, --n-cpu-moe {p.n_cpu_moe}"
                     f"{', --cpu-moe' if p.cpu_moe else ''}; layers: {where}")  # fmt: skip
    s = result.speed
    lines.append(f"  decode {s.tg_tps:.1f} tok/s ({s.tg_tps_range[0]:.1f}-{s.tg_tps_range[1]:.1f}"
                 f"{ceiling_note(s.tg_tps_ceiling, 1)}), prefill {s.pp_tps:.0f} tok/s "
                 f"({s.pp_tps_range[0]:.0f}-{s.pp_tps_range[1]:.0f}"
                 f"{ceiling_note(s.pp_tps_ceiling, 0)}), depth {s.depth}, "
                 f"ttft {s.ttft_s:.2f} s")  # fmt: skip
    lines += [f"  basis: {b}" for b in result.basis]
    return "\n".join(lines)


def served_otherwise(hardware: HardwareProfile, request: EstimateRequest) -> list[str]:
    """Where a plan would serve this box otherwise than the request asks: a quirk's
    --no-repack (catalog/quirks.yaml), which changes the CPU kernels and so the decode figure."""
    if request.engine != "llama.cpp" or not request.repack:
        return []
    from stackctl.policy import load_policy
    from stackctl.resolve.quirks import matching_quirks, shape_of
    from stackctl.resources import catalog_dir

    shape = shape_of(hardware, backend=request.backend, moe=False, speculative="none",
                     engine=request.engine)  # fmt: skip
    quirks = matching_quirks(load_policy(catalog_dir()), shape)
    return [f"a plan serves this box with --no-repack (quirk {q.id}: {q.summary}); "
            "--no-repack estimates what it serves" for q in quirks
            if q.effect.server.get("repack") == "off"]  # fmt: skip


def run(args: argparse.Namespace) -> int:
    hardware = _load_hardware(args)
    request = build_request(args, hardware)
    result = estimate(request, hardware)
    # what the hardware rests on (a declared GPU's assumed variant, a wired share, an unknown
    # ISA) beside the figures that rest on it, and flags a plan would set otherwise
    notes = hardware.warnings + served_otherwise(hardware, request)
    if args.json:
        print_json({**result.model_dump(mode="json"), "hardware_warnings": notes})
    else:
        print(_summary(result))
        for note in notes:
            print(f"  hardware: {note}")
    return EXIT_OK
