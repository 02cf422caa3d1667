"""Stage 1, enumerate: every model file x engine x backend this box could run, unscored."""

from __future__ import annotations

from stackctl.models.catalog import EngineEntry
from stackctl.models.hardware import HardwareProfile
from stackctl.models.policy import Policy
from stackctl.resolve.candidate import Candidate
from stackctl.resolve.context import kv_type
from stackctl.resolve.session import Loaded


def backends_for(hardware: HardwareProfile, engine: EngineEntry, policy: Policy) -> list[str]:
    """The engine's backends for the box's first GPU vendor, in policy order (CPU without)."""
    if not hardware.accelerators:
        return ["cpu"] if "cpu" in engine.backends else []
    vendor = hardware.accelerators[0].vendor
    wanted = policy.runtime.backends_by_vendor.get(vendor, [])
    return [b for b in wanted if b in engine.backends]


def enumerate_candidates(
    hardware: HardwareProfile, loaded: Loaded, *, context: int
) -> list[Candidate]:
    engines = {e.name: e for e in loaded.catalog.engines}
    models = loaded.session.estimates.models
    out: list[Candidate] = []
    for artefact in loaded.catalog.artefacts:
        entry = models.get(artefact.model)
        engine = engines.get(artefact.engine)
        if entry is None or engine is None:
            continue
        if engine.models is not None and entry.id not in engine.models:
            continue
        kv = kv_type(context, loaded.policy)
        for backend in backends_for(hardware, engine, loaded.policy):
            out.append(Candidate(artefact=artefact, entry=entry, engine=engine,
                                 backend=backend, ctx=context, kv=kv))  # fmt: skip
    return out
