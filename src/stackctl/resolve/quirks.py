"""Known quirks (catalog/quirks.yaml): which rules match a stack, and what they change.

A rule matches on hardware arch, vendor, unified memory, OS, backend, model shape (MoE),
speculative kind, multi-GPU and engine; its effect adds requirements, kernel parameters,
server flags or backend preference points. Pure functions over data.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackctl.models.hardware import HardwareProfile
from stackctl.models.policy import Policy, Quirk, QuirkMatch
from stackctl.models.resolved import QuirkApplied, Requirements

GIB = 1024**3
PAGE = 4096


@dataclass(frozen=True)
class StackShape:
    """What a quirk can match on, for one candidate stack."""

    archs: tuple[str, ...]
    vendor: str | None
    unified: bool
    os: str
    backend: str
    moe: bool
    multi_gpu: bool
    speculative: str
    engine: str
    cpu_flags: frozenset[str] = frozenset()


def shape_of(
    hardware: HardwareProfile, *, backend: str, moe: bool, speculative: str, engine: str
) -> StackShape:
    accs = hardware.accelerators
    return StackShape(
        archs=tuple(a.arch for a in accs if a.arch),
        vendor=accs[0].vendor if accs else None,
        unified=any(a.unified for a in accs),
        os=hardware.os.system,
        backend=backend,
        moe=moe,
        multi_gpu=len(accs) > 1,
        speculative=speculative,
        engine=engine,
        cpu_flags=frozenset(hardware.cpu.flags),
    )


def _matches(m: QuirkMatch, s: StackShape) -> bool:
    checks = [
        m.arch is None or any(a in m.arch for a in s.archs),
        m.vendor is None or m.vendor == s.vendor,
        m.unified is None or m.unified == s.unified,
        m.os is None or m.os == s.os,
        m.backend is None or s.backend in m.backend,
        m.moe is None or m.moe == s.moe,
        m.multi_gpu is None or m.multi_gpu == s.multi_gpu,
        m.speculative is None or m.speculative == s.speculative,
        m.engine is None or m.engine == s.engine,
        m.cpu_flags is None or bool(s.cpu_flags.intersection(m.cpu_flags)),
    ]
    return all(checks)


def matching_quirks(policy: Policy, shape: StackShape) -> list[Quirk]:
    return [q for q in policy.quirks.quirks if _matches(q.match, shape)]


def backend_points(quirks: list[Quirk], backend: str) -> float:
    return sum(q.effect.backend_points.get(backend, 0.0) for q in quirks)


def server_setting(quirks: list[Quirk], key: str) -> str | None:
    for q in quirks:
        if key in q.effect.server:
            return q.effect.server[key]
    return None


def gtt_pages(hardware: HardwareProfile, policy: Policy) -> int | None:
    """ttm.pages_limit for RAM minus the OS reserve, when a rule asks to raise GTT."""
    total = hardware.memory.total_bytes
    if total is None:
        return None
    reserve = int(policy.runtime.gtt_reserve_gib * GIB)
    return max(total - reserve, 0) // PAGE


def raise_gtt_budget(
    hardware: HardwareProfile, policy: Policy
) -> tuple[HardwareProfile, int | None]:
    """The profile with APU GTT raised to RAM - reserve where a quirk says it can be."""
    shape = shape_of(hardware, backend="any", moe=False, speculative="none", engine="llama.cpp")
    if not any(q.effect.raise_gtt_budget for q in matching_quirks(policy, shape)):
        return hardware, None
    pages = gtt_pages(hardware, policy)
    if pages is None:
        return hardware, None
    budget = pages * PAGE
    accs = [
        a.model_copy(update={"memory_budget_bytes": budget, "budget_source": "ttm.pages_limit"})
        if a.unified and (a.memory_budget_bytes or 0) < budget
        else a
        for a in hardware.accelerators
    ]
    if accs == hardware.accelerators:
        return hardware, None
    return hardware.model_copy(update={"accelerators": accs}), pages


def requirements(quirks: list[Quirk], gtt: int | None) -> Requirements:
    runtime: dict[str, str] = {}
    params: list[str] = []
    packages: list[str] = []
    notes: list[str] = []
    env: dict[str, str] = {}
    kernel = firmware = driver = None
    for q in quirks:
        req = q.effect.requires
        runtime.update(req.runtime)
        kernel = req.kernel or kernel
        firmware = req.firmware or firmware
        driver = req.driver or driver
        packages += [p for p in req.packages if p not in packages]
        params += [p for p in q.effect.kernel_params if p not in params]
        env.update(q.effect.env)
        notes += q.effect.notes
    if gtt is not None:
        params.append(f"ttm.pages_limit={gtt}")
    return Requirements(
        driver=driver,
        runtime=runtime,
        kernel=kernel,
        kernel_params=params,
        firmware=firmware,
        env=env,
        packages=packages,
        notes=notes,
    )


def applied(quirks: list[Quirk]) -> list[QuirkApplied]:
    return [QuirkApplied(id=q.id, summary=q.summary, source=q.source) for q in quirks]
