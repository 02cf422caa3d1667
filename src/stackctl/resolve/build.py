"""Turn the chosen candidate into a ResolvedStack: pins, flags, speculative decoding, quirks
and requirements, and the reasons in words."""

from __future__ import annotations

from typing import Literal

from stackctl.engines import ds4, llamacpp, mlxlm
from stackctl.estimate.speed import shown_up
from stackctl.models.catalog import EngineEntry, ModelArtefact
from stackctl.models.hardware import HardwareProfile
from stackctl.models.policy import Policy, Quirk
from stackctl.models.resolved import (
    ArtefactPin,
    DraftChoice,
    EnginePin,
    ModelChoice,
    Platform,
    Prediction,
    ResolvedStack,
    RuntimeFlags,
    Speculative,
    VulkanHeaderPins,
)
from stackctl.models.spec import StackSpec
from stackctl.resolve.candidate import Candidate
from stackctl.resolve.quirks import applied, matching_quirks, requirements, server_setting, shape_of
from stackctl.resolve.score import is_moe
from stackctl.resolve.session import threads_of


def _pin(
    url: str, file: str, sha256: str | None, size: int | None, origin: str, parts: int = 1
) -> ArtefactPin:
    return ArtefactPin(
        url=url, file=file, sha256=sha256, size=size, verified=sha256 is not None,
        origin=origin, parts=parts,
    )  # fmt: skip


def platform_of(hardware: HardwareProfile) -> Platform:
    arch = hardware.cpu.arch
    return Platform(
        os="darwin" if hardware.os.system == "darwin" else "linux",
        arch="aarch64" if arch == "arm64" and hardware.os.system != "darwin" else arch,
        cpu_flags=sorted(set(hardware.cpu.flags)),
    )


def _gpu_archs(hardware: HardwareProfile) -> list[str]:
    return sorted({a.arch for a in hardware.accelerators if a.arch})


def engine_pin(engine: EngineEntry, backend: str, hardware: HardwareProfile) -> EnginePin:
    archs = _gpu_archs(hardware)
    if engine.name == "ds4":
        flags = [f"make {ds4.make_target(backend, archs[0] if archs else None)}"]
    elif engine.name == "mlx-lm":
        flags = [f"pip install {engine.source.file}"]  # into the engine's own venv (mlx-lm role)
    else:
        flags = llamacpp.cmake_flags(engine, backend, archs)
    src = engine.source
    return EnginePin(
        name=engine.name,
        version=engine.version,
        build_number=engine.build_number,
        commit=engine.commit,
        backend=backend,
        source=_pin(src.url, src.file, src.sha256, src.size, src.origin),
        source_subdir=src.subdir,
        cmake_flags=flags,
        targets=list(engine.binaries),
        build_key=llamacpp.build_key(src.sha256, src.url, flags, list(engine.binaries)),
        vulkan_headers=vulkan_header_pins(engine) if backend == "vulkan" else None,
    )


def vulkan_header_pins(engine: EngineEntry) -> VulkanHeaderPins | None:
    """The catalog's header requirement, with its .debs as pins the mirror can serve."""
    need = engine.vulkan_headers
    if need is None:
        return None
    debs = [_pin(d.url, d.file, d.sha256, d.size, d.origin) for d in need.debs]
    return VulkanHeaderPins(min_version=need.min_version, source=need.source, debs=debs)


def model_choice(artefact: ModelArtefact) -> ModelChoice:
    a = artefact
    origin = a.origin
    return ModelChoice(
        id=a.model,
        quant=a.quant,
        kind=a.kind,
        repo=a.repo,
        revision=a.revision,
        license=a.license,
        artefact=_pin(a.url, a.file, a.sha256, a.size, origin, a.parts).model_copy(
            update={"sources": a.sources}
        ),
    )


def speculative_for(c: Candidate) -> tuple[Speculative, str]:
    """The lock's record of what speculative.py turned on, and the reason line."""
    plan = c.speculative
    if plan is None:
        return Speculative(), (
            "speculative: none (no MTP heads or draft model that fits and pays on this box: "
            "catalog/runtime.yaml mtp, drafts; details in the basis)"
        )
    if plan.kind == "mtp":
        return (
            Speculative(kind="mtp", n_max=plan.n_max, source=plan.source),
            f"speculative: MTP heads, n_max {plan.n_max} ({plan.source})",
        )
    rule, a = plan.draft, plan.draft_artefact
    assert rule is not None
    assert a is not None
    pin = _pin(a.url, a.file, a.sha256, a.size, a.origin, a.parts)
    choice = DraftChoice(id=rule.draft, quant=rule.quant, artefact=pin, acceptance=rule.acceptance)
    return (
        Speculative(
            kind="draft", draft_model=rule.draft, draft=choice, n_max=rule.n_max, source=rule.source
        ),
        f"speculative: draft model {rule.draft} {rule.quant}, n_max {rule.n_max}, "
        f"acceptance {rule.acceptance:g} ({rule.source})",
    )


def _ubatch(c: Candidate, hardware: HardwareProfile, policy: Policy) -> int | None:
    archs = _gpu_archs(hardware)
    for rule in policy.runtime.ubatch:
        if rule.backend != c.backend or (rule.arch and rule.arch not in archs):
            continue
        if rule.moe is None or rule.moe == is_moe(c.entry):
            return rule.ubatch
    return None


SPEC_TYPES = {"mtp": "draft-mtp", "draft": "draft-simple"}  # b11434 --spec-type values


def runtime_flags(
    c: Candidate, spec: StackSpec, hardware: HardwareProfile, quirks: list[Quirk],
    speculative: Speculative, policy: Policy,
) -> RuntimeFlags:  # fmt: skip
    context = c.ctx * spec.users  # llama-server splits -c across its slots
    mlx = c.engine.name == "mlx-lm"
    threads = None if mlx else threads_of(hardware)  # mlx_lm.server has no --threads
    ubatch = _ubatch(c, hardware, policy)
    load_mode = server_setting(quirks, "load_mode")
    repack = None if c.repack else False  # prescore's, from the quirk: what the estimate ran
    no_fa = server_setting(quirks, "flash_attn") == "off"
    flash_attn: Literal["on", "off"] = "off" if no_fa else "on"
    # llama.cpp quantises the V cache only with flash attention: off, the cache is f16
    cache = c.kv if flash_attn == "on" else "f16"
    kv = "bf16" if mlx else cache  # mlx-lm's KV is the model's dtype; no cache-type flag
    if c.engine.name == "ds4":
        args = ds4.server_args(host=spec.serve.host, port=spec.serve.port, context=context,
                               threads=threads, backend=c.backend)  # fmt: skip
    elif c.engine.name == "mlx-lm":
        mem = c.estimate.memory if c.estimate else None
        held = mem.kv_bytes + mem.state_bytes if mem else 0
        args = mlxlm.server_args(host=spec.serve.host, port=spec.serve.port, users=spec.users,
                                 cache_bytes=max(held, 1 << 20))  # fmt: skip
    else:
        extra = llamacpp.ServerExtras(
            ngl=None if c.backend == "cpu" else c.placement.ngl,
            n_cpu_moe=c.placement.n_cpu_moe,
            tensor_split=c.placement.tensor_split,
            ubatch=ubatch,
            load_mode=load_mode,
            repack=repack,
            spec_type=SPEC_TYPES.get(speculative.kind),
            spec_draft_n_max=speculative.n_max,
        )
        args = llamacpp.server_args(
            host=spec.serve.host, port=spec.serve.port, context=context, threads=threads,
            flash_attn=flash_attn, parallel=spec.users, cache_type_k=cache, cache_type_v=cache,
            alias=c.entry.id, extra=extra,
        )  # fmt: skip
    return RuntimeFlags(
        host=spec.serve.host, port=spec.serve.port, context=context, threads=threads,
        flash_attn=flash_attn, parallel=spec.users, cache_type_k=kv, cache_type_v=kv,
        server_args=args, ubatch=ubatch, load_mode=load_mode, repack=repack,
    )  # fmt: skip


THREADS_UNKNOWN = (
    "threads: not set: the profile does not know the CPU's physical cores (declare it with "
    "--cpu); the engine picks its own default"
)


def threads_line(threads: int | None) -> str:
    return f"threads {threads}: physical cores" if threads else THREADS_UNKNOWN


def prediction(c: Candidate) -> Prediction:
    """The evaluated candidate's figures: speculative decoding is already in them."""
    basis = list(c.estimate.basis) if c.estimate else []
    basis += c.basis
    return Prediction(
        memory_total_bytes=c.memory,
        tg_tps=round(c.tg, 1),
        tg_tps_range=(round(c.tg_range[0], 1), round(c.tg_range[1], 1)),
        pp_tps=round(c.pp, 1),
        pp_tps_range=(round(c.pp_range[0], 1), round(c.pp_range[1], 1)),
        basis=basis,
        tg_tps_ceiling=_ceiling(c.tg_ceiling, c.tg),
        pp_tps_ceiling=_ceiling(c.pp_ceiling, c.pp),
    )


def _ceiling(value: float | None, figure: float) -> float | None:
    """A ceiling as the lock shows it: rounded up (speed.shown_up), and never below the figure
    as the lock rounds it."""
    return max(shown_up(value), round(figure, 1)) if value else None


def _reasons(c: Candidate, spec: StackSpec, hardware: HardwareProfile, spec_line: str) -> list[str]:
    why = "pinned by the stack" if spec.pin else f"best {spec.workload} score that fits and meets"
    if not spec.pin:
        why += f" {spec.min_tg_tps:g} tok/s"
    place = c.placement
    where = "CPU" if c.backend == "cpu" else f"{c.backend} on {len(hardware.accelerators)} GPU(s)"
    lines = [
        f"{c.entry.id} {c.artefact.quant}: {why} (score {c.score.value:.1f})",
        f"backend {c.backend}: {where}"
        + (f", tensor split {place.tensor_split}" if place.tensor_split else ""),
        threads_line(threads_of(hardware))
        if c.engine.name != "mlx-lm"
        else "threads: not set (mlx_lm.server has no --threads; MLX runs on the GPU)",
        f"kv cache {c.kv}: context {c.ctx} per user"
        if c.engine.name != "mlx-lm"
        else f"kv cache bf16 (mlx-lm's own, grown in 256-token steps): context {c.ctx} per user",
        spec_line,
    ]
    if place.n_cpu_moe:
        lines.append(f"--n-cpu-moe {place.n_cpu_moe}: the rest of the model fits in VRAM")
    if c.engine_note:
        lines.append(f"engine {c.engine.name}: {c.engine_note}")
    return lines


def build_resolved(
    spec: StackSpec, hardware: HardwareProfile, planned: HardwareProfile, c: Candidate,
    policy: Policy, *, gtt: int | None, relaxed: list[str],
) -> ResolvedStack:  # fmt: skip
    speculative, spec_line = speculative_for(c)
    shape = shape_of(planned, backend=c.backend, moe=is_moe(c.entry),
                     speculative=speculative.kind, engine=c.engine.name)  # fmt: skip
    quirks = matching_quirks(policy, shape)
    reqs = requirements(quirks, gtt)
    if c.backend == "cuda":
        cuda = "13.0" if "sm_121" in _gpu_archs(planned) else "12.8"
        reqs = reqs.model_copy(update={
            "runtime": {**reqs.runtime, "cuda": f">={cuda}"},
            "driver": f">={policy.runtime.cuda_driver_min[cuda]}",
        })  # fmt: skip
    return ResolvedStack(
        stack=spec.name,
        workload=spec.workload,
        hardware=hardware.name,
        engine=engine_pin(c.engine, c.backend, planned),
        model=model_choice(c.artefact),
        runtime=runtime_flags(c, spec, planned, quirks, speculative, policy),
        service=f"stackctl-{spec.name}",
        predicted=prediction(c),
        reasons=_reasons(c, spec, planned, spec_line) + relaxed,
        placement=c.placement,
        speculative=speculative,
        quirks=applied(quirks),
        requirements=reqs,
        score=c.score.value,
        score_basis=list(c.score.basis),
        relaxed=relaxed,
        platform=platform_of(planned),
    )
