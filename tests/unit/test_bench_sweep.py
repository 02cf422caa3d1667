"""`bench --sweep`: its candidates (real golden locks, real catalog, the pinned build's own
--help), the other built backends it finds by build key, a replay of a measured sweep, and a
tuning file through the lock into the rendered server flags."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from stackctl import layout
from stackctl.bench.builds import cmake_cache, other_builds
from stackctl.bench.models import SweepCandidate, Tuning, TuningFlags
from stackctl.bench.spec_sweep import ServerPlan, server_argv
from stackctl.bench.sweep import (
    LOAD_MODES,
    BenchTarget,
    SpecStage,
    SweepPlan,
    SweepSpace,
    describe,
    llama_bench_argv,
    stage_flags,
    sweep,
    sweep_size,
)
from stackctl.bench.tuning import read_tuning, tuning_path, write_tuning
from stackctl.catalog import load_catalog
from stackctl.cli.hardware_args import load_profile
from stackctl.cli.sweep_args import (
    _space,
    add_sweep_options,
    bench_targets,
    can_lock,
    quirk_load_mode,
    spec_stage_of,
)
from stackctl.detect import declare_hardware
from stackctl.lock import read_lockfile
from stackctl.models.lock import Lockfile
from stackctl.models.render import HostLayout
from stackctl.pipeline import Inputs, make_lock
from stackctl.render import make_environment, render_stack
from stackctl.resources import catalog_dir, roles_dir, templates_dir
from stackctl.spec import load_stack
from tests.support.render_cases import BY_NAME, REPO

DATA = REPO / "tests" / "data"
BENCH_HELP = (DATA / "engines" / "llama-bench-b11434.help.txt").read_text()
SERVER_HELP = (DATA / "engines" / "llama-server-b11434.help.txt").read_text()
RECORDED = DATA / "bench" / "sweep-cpu-x86-2core.tuning.yaml"


def golden(name: str) -> Lockfile:
    return read_lockfile(BY_NAME[name].lock_path)


def inputs_of(name: str) -> Inputs:
    case = BY_NAME[name]
    if case.profile:
        hardware = load_profile(REPO / case.profile)
    else:
        d = case.declared
        hardware = declare_hardware(gpus=list(d.get("gpus", [])), gpu_count=d.get("gpu_count"),
                                    cpu=d.get("cpu"), ram_gib=d.get("ram_gib"),
                                    system=d.get("system"))  # fmt: skip
    spec_path = REPO / case.stack
    profile = REPO / case.profile if case.profile else None
    return Inputs(load_stack(spec_path), spec_path, hardware, profile, load_catalog(catalog_dir()))


def sweep_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_sweep_options(parser)
    return parser.parse_args(list(argv))


def host_in(tmp: Path) -> HostLayout:
    return HostLayout(prefix=str(tmp / "opt"), cache_dir=str(tmp / "cache"))


def add_build(host: HostLayout, lock: Lockfile, key: str, switch: str | None, number: int) -> Path:
    """A finished build folder as build-llamacpp.sh leaves it: the lines of CMakeCache.txt
    the sweep reads, build.ok, and bin/."""
    engine = lock.resolved.engine
    folder = Path(host.cache_dir) / "build" / f"{engine.name}-{key}"
    (folder / "out" / "bin").mkdir(parents=True)
    lines = [
        "# This is the CMakeCache file.",
        f"CMAKE_HOME_DIRECTORY:INTERNAL={folder}/{engine.source_subdir}",
        f"LLAMA_BUILD_NUMBER:UNINITIALIZED={number}",
        *[f"{s}:BOOL={'ON' if s == switch else 'OFF'}" for s in ("GGML_HIP", "GGML_VULKAN")],
    ]
    (folder / "out" / "CMakeCache.txt").write_text("\n".join(lines) + "\n")
    (folder / "out" / "build.ok").touch()
    return folder / "out" / "bin"


def test_swept_flags_are_the_pinned_builds_own_spellings() -> None:
    """Load modes as llama-bench b11434 and llama-server b11434 accept them; llama-bench has no
    draft-model option, which is why n_max is not swept with it."""
    bench_modes = BENCH_HELP.split("-lm, --load-mode <", 1)[1].split(">", 1)[0].split("|")
    assert set(LOAD_MODES) <= set(bench_modes)
    server_block = SERVER_HELP.split("--load-mode MODE", 1)[1].split("(env:", 1)[0]
    assert all(f"- {mode}:" in server_block for mode in LOAD_MODES)
    assert "draft" not in BENCH_HELP
    assert "--spec" not in BENCH_HELP
    assert "--spec-draft-n-max N" in SERVER_HELP


def test_candidates_for_the_tiny_cpu_lock(tmp_path: Path) -> None:
    lock = golden("cpu-x86")
    host = host_in(tmp_path)
    targets, notes = bench_targets(lock, inputs_of("cpu-x86"), host, "--repack 0")
    assert list(targets) == ["cpu"]
    assert notes == []
    assert targets["cpu"].extra == ["-fa", "on", "--repack", "0"]
    assert targets["cpu"].load_mode is None  # no quirk fixes it on this profile
    space = _space(sweep_args("--ubatch", "512"), lock, inputs_of("cpu-x86").hardware, targets)
    size = lock.resolved.model.artefact.size or 0
    assert list(space.load_modes) == [m for m in LOAD_MODES if m != "mlock" or can_lock(size)]
    assert list(space.threads) == [1, 2]
    assert list(space.backends) == []
    best = TuningFlags(threads=1, ubatch=512)
    stages = stage_flags(best, space)
    assert [describe(f) for f in stages[2]] == [
        f"threads=1 ubatch=512 load_mode={m}" for m in space.load_modes
    ]
    assert stages[1] == []
    assert stages[3] == []
    assert sweep_size(space) == 1 + 2 + 1 + len(space.load_modes)
    plan = SweepPlan(targets=targets, backend="cpu", model_path="m.gguf", objective="tg", depth=256)
    argv = llama_bench_argv(plan, stages[2][0])
    assert argv[argv.index("-lm") + 1] == space.load_modes[0]
    assert "-lm" not in llama_bench_argv(plan, TuningFlags())  # defaults: llama.cpp's auto


def test_a_quirks_load_mode_is_kept_and_not_swept(tmp_path: Path) -> None:
    """On an APU mmap double-buffers and hangs (quirk apu-load-mode-none): every run keeps
    `-lm none`, once (llama-bench would run each value of a repeated flag)."""
    lock = golden("strix-halo-128-vulkan")
    assert quirk_load_mode(lock.resolved) == "none"
    assert quirk_load_mode(golden("cpu-x86").resolved) is None
    targets, _ = bench_targets(lock, inputs_of("strix-halo-128-vulkan"), host_in(tmp_path), None)
    space = _space(sweep_args(), lock, inputs_of("strix-halo-128-vulkan").hardware, targets)
    assert list(space.load_modes) == []
    plan = SweepPlan(targets=targets, backend="vulkan", model_path="m", objective="tg", depth=1)
    argv = llama_bench_argv(plan, TuningFlags(threads=8, load_mode="dio"))
    assert argv.count("-lm") == 1
    assert argv[argv.index("-lm") + 1] == "none"


def test_other_backend_built_here_is_found_by_its_build_key(tmp_path: Path) -> None:
    """Strix Halo's Vulkan lock and a ROCm build of the same engine version in the cache: the
    sweep resolves the stack on ROCm and runs that build's llama-bench, keyed as the ROCm
    golden lock's build is. Another version's build, and a ROCm build for other flags, are not
    taken."""
    lock, rocm = golden("strix-halo-128-vulkan"), golden("strix-halo-128-rocm")
    host = host_in(tmp_path)
    number = lock.resolved.engine.build_number or 0
    add_build(host, lock, "0000000000000000", "GGML_HIP", number)  # other GPU targets
    add_build(host, lock, "1111111111111111", "GGML_HIP", number + 1)  # another version
    rocm_bin = add_build(host, lock, rocm.resolved.engine.build_key, "GGML_HIP", number)
    assert other_builds(lock, host) == {
        "rocm": ["0000000000000000", rocm.resolved.engine.build_key]
    }
    targets, notes = bench_targets(lock, inputs_of("strix-halo-128-vulkan"), host, None)
    assert notes == []
    assert targets["rocm"].llama_bench == f"{rocm_bin}/llama-bench"
    assert targets["rocm"].load_mode == "none"
    assert targets["rocm"].env == rocm.resolved.requirements.env
    ngl = targets["rocm"].extra[targets["rocm"].extra.index("-ngl") + 1]
    assert ngl == str(min(rocm.resolved.placement.ngl, 999))
    space = _space(sweep_args(), lock, inputs_of("strix-halo-128-vulkan").hardware, targets)
    assert list(space.backends) == ["rocm"]
    assert stage_flags(TuningFlags(threads=16), space)[3] == [
        TuningFlags(threads=16, backend="rocm")
    ]


def test_a_build_this_profile_cannot_plan_is_named_not_compared(tmp_path: Path) -> None:
    """This box's CPU profile has no Vulkan device: a Vulkan build beside the CPU one is
    listed with the reason, never measured into a lock that could not use it."""
    lock = golden("cpu-x86")
    host = host_in(tmp_path)
    add_build(host, lock, "2222222222222222", "GGML_VULKAN", lock.resolved.engine.build_number or 0)
    targets, notes = bench_targets(lock, inputs_of("cpu-x86"), host, None)
    assert list(targets) == ["cpu"]
    assert len(notes) == 1
    assert notes[0].startswith("vulkan build 2222222222222222: not compared")


def test_cmake_cache_lines() -> None:
    cache = cmake_cache("// help\n# c\nGGML_VULKAN:BOOL=ON\nX:PATH=/a=b\n\n")
    assert cache == {"GGML_VULKAN": "ON", "X": "/a=b"}


def test_replaying_a_measured_sweep_picks_its_winner() -> None:
    """The figures a real sweep measured on this box, fed back in the same order: the search
    asks for the same candidates and keeps the same winner; challengers after the grid that
    win only within the spread (here q8_0 KV) do not replace it."""
    recorded = read_tuning(RECORDED)
    by_flags = {c.flags.model_dump_json(): c for c in recorded.candidates}
    grid = recorded.candidates[1:3]
    space = _space_of(recorded)
    asked: list[TuningFlags] = []

    def replay(flags: TuningFlags) -> SweepCandidate:
        asked.append(flags)
        return by_flags[flags.model_dump_json()]

    done, winner, default = sweep(space, replay)
    assert asked == [c.flags for c in recorded.candidates]
    assert winner is not None
    assert winner.flags == recorded.winner
    assert default.is_default
    assert default.tps == recorded.default_tps
    assert winner.tps == max(c.tps or 0 for c in grid)
    kv = next(c for c in done if c.flags.type_k == "q8_0")
    assert kv.tps
    assert winner.tps
    assert kv.tps > winner.tps


def _space_of(recorded: Tuning) -> SweepSpace:
    flags = [c.flags for c in recorded.candidates]
    return SweepSpace(
        threads=sorted({f.threads for f in flags if f.threads is not None}),
        ubatch=sorted({f.ubatch for f in flags if f.ubatch is not None}),
        kv_types=["f16", *sorted({f.type_k for f in flags if f.type_k})],
        load_modes=[f.load_mode for f in flags if f.load_mode],
    )


def _tuning(lock: Lockfile, winner: TuningFlags, model: str | None = None) -> Tuning:
    r = lock.resolved
    return Tuning(
        stack=r.stack, hardware=r.hardware, objective="tg", depth=512, engine_build="b11434",
        model=model or r.model.id, quant=r.model.quant, winner=winner, winner_tps=20.0,
        default_tps=10.0, gain=1.0, measured_on="2026-12-05T00:00:00+00:00", candidates=[],
    )  # fmt: skip


def _server_flags(lock: Lockfile) -> list[str]:
    return layout.service_argv(lock, HostLayout())


def test_tuned_load_mode_reaches_the_rendered_unit(in_tmp: Path) -> None:
    lock = golden("cpu-x86")
    winner = TuningFlags(threads=1, load_mode="mlock", spec_n_max=4)
    write_tuning(_tuning(lock, winner), tuning_path(lock.resolved.stack, lock.resolved.hardware))
    tuned = make_lock(inputs_of("cpu-x86"))
    argv = _server_flags(tuned)
    assert argv.count("--load-mode") == 1
    assert argv[argv.index("--load-mode") + 1] == "mlock"
    assert argv[argv.index("--threads") + 1] == "1"
    assert "--spec-draft-n-max" not in argv  # no speculative decoding in this stack
    assert tuned.resolved.runtime.load_mode == "mlock"
    assert "n_max not applied" in tuned.resolved.reasons[-1]
    assert tuned.inputs.tuning is not None
    files = render_stack(tuned, make_environment(templates_dir()), roles=roles_dir(),
                         lock_name="lockfiles/cpu-x86.lock.yaml")  # fmt: skip
    unit = next(f.content for f in files if f.path.endswith(".service"))
    assert '"--load-mode" "mlock"' in unit


def test_tuned_n_max_reaches_the_draft_stacks_flags(in_tmp: Path) -> None:
    lock = golden("rtx-3090x2-llama-draft")
    assert lock.resolved.speculative.kind == "draft"
    write_tuning(
        _tuning(lock, TuningFlags(spec_n_max=6)),
        tuning_path(lock.resolved.stack, lock.resolved.hardware),
    )
    tuned = make_lock(inputs_of("rtx-3090x2-llama-draft"))
    argv = _server_flags(tuned)
    assert argv.count("--spec-draft-n-max") == 1
    assert argv[argv.index("--spec-draft-n-max") + 1] == "6"
    assert tuned.resolved.speculative.n_max == 6
    assert "--spec-draft-model" in argv


def test_tuned_backend_relocks_on_that_build(in_tmp: Path) -> None:
    """ROCm won on the Strix Halo default stack: the lock is the stack resolved on ROCm (the
    ROCm golden lock's build, its -ngl and APU quirks), the winning flags on top, and the model
    line the plan's own."""
    vulkan, rocm = golden("strix-halo-128-vulkan"), golden("strix-halo-128-rocm")
    path = tuning_path(vulkan.resolved.stack, vulkan.resolved.hardware)
    write_tuning(_tuning(vulkan, TuningFlags(threads=8, backend="rocm")), path)
    tuned = make_lock(inputs_of("strix-halo-128-vulkan"))
    assert tuned.resolved.engine == rocm.resolved.engine
    assert tuned.resolved.reasons[0] == vulkan.resolved.reasons[0]
    assert "backend rocm, threads 8" in tuned.resolved.reasons[-1]
    argv = _server_flags(tuned)
    assert argv[0].endswith(f"llama.cpp-{rocm.resolved.engine.build_key}/bin/llama-server")
    assert argv[argv.index("--load-mode") + 1] == "none"  # the APU quirk, on ROCm too
    assert argv[argv.index("--threads") + 1] == "8"
    assert "--n-gpu-layers" in argv

    # a sweep of another model says nothing about this one: its backend stays
    write_tuning(_tuning(vulkan, TuningFlags(backend="rocm"), model="gemma-3-270m"), path)
    kept = make_lock(inputs_of("strix-halo-128-vulkan"))
    assert kept.resolved.engine == vulkan.resolved.engine
    assert "backend rocm not applied" in kept.resolved.reasons[-1]


@pytest.mark.parametrize("mode", ["dio", "none"])
def test_load_mode_candidates_pass_through_to_llama_bench(mode: str) -> None:
    target = BenchTarget(llama_bench="/b/llama-bench", extra=["-fa", "on"])
    plan = SweepPlan(targets={"cpu": target}, backend="cpu", model_path="m", objective="tg",
                     depth=0)  # fmt: skip
    argv = llama_bench_argv(plan, TuningFlags(threads=2, load_mode=mode))
    assert argv[:3] == ["/b/llama-bench", "-m", "m"]
    assert argv[argv.index("-lm") + 1] == mode
    assert argv[argv.index("-t") + 1] == "2"


def test_n_max_stage_runs_the_locks_own_server_line(tmp_path: Path) -> None:
    """A draft stack's n_max stage: the lock's n_max and a bounded set around it, each run as
    the deployed llama-server command line on a free loopback port, without the key file."""
    lock = golden("rtx-3090x2-llama-draft")
    host = host_in(tmp_path)
    stage, note = spec_stage_of(sweep_args(), lock, host)
    assert stage is not None
    assert note is not None
    assert "llama-server" in note
    current = lock.resolved.speculative.n_max
    assert stage.current == current
    assert current in stage.choices
    assert len(stage.choices) <= 4
    plan = ServerPlan(argv=layout.service_argv(lock, host))
    argv = server_argv(plan, TuningFlags(threads=8, ubatch=256, spec_n_max=7), 5555)
    assert argv[0].endswith("llama-server")
    assert argv.count("--spec-draft-n-max") == 1
    assert argv[argv.index("--spec-draft-n-max") + 1] == "7"
    assert argv[argv.index("--threads") + 1] == "8"
    assert argv[argv.index("--ubatch-size") + 1] == "256"
    assert argv.count("--host") == 1
    assert argv[-4:] == ["--host", "127.0.0.1", "--port", "5555"]
    assert argv[argv.index("--spec-draft-model") + 1] == layout.draft_path(lock, host)
    assert "--api-key-file" not in argv
    # every flag the server gets is one llama-server b11434 knows
    assert all(a in SERVER_HELP for a in argv[1:] if a.startswith("--"))
    given = spec_stage_of(sweep_args("--n-max", "1,3"), lock, host)[0]
    assert given is not None
    assert list(given.choices) == sorted({1, 3, current or 3})


def test_no_n_max_stage_without_speculation_or_for_ttft(tmp_path: Path) -> None:
    host = host_in(tmp_path)
    assert spec_stage_of(sweep_args(), golden("cpu-x86"), host) == (None, None)
    stage, note = spec_stage_of(
        sweep_args("--objective", "ttft"), golden("rtx-3090x2-llama-draft"), host
    )
    assert stage is None
    assert note is not None
    assert "not swept for ttft" in note


def _spec_run(
    rates: dict[int, tuple[float, float]], backend: str | None = None
) -> tuple[list[SweepCandidate], SweepCandidate | None]:
    """A sweep with fixed llama-bench figures and the given llama-server (tps, std) per n_max."""
    space = SweepSpace(threads=[2], ubatch=[512], kv_types=["f16"])

    def bench(flags: TuningFlags) -> SweepCandidate:
        if flags.threads:
            flags = flags.model_copy(update={"backend": backend})
        return SweepCandidate(flags=flags, tps=40.0, tps_std=1.0)

    def server(flags: TuningFlags) -> SweepCandidate:
        tps, std = rates[flags.spec_n_max or 0]
        return SweepCandidate(flags=flags, tps=tps, tps_std=std, method="llama-server")

    stage = SpecStage(current=3, choices=sorted(rates), backend="cuda", measure=server)
    done, winner, _default = sweep(space, bench, spec=stage)
    return done, winner


def test_n_max_challenger_wins_only_beyond_the_spread() -> None:
    done, winner = _spec_run({1: (50.0, 1.0), 3: (60.0, 1.0), 5: (70.0, 2.0)})
    assert winner is not None
    assert winner.flags.spec_n_max == 5
    assert winner.tps == 40.0  # the winner's figure stays llama-bench's
    assert [c.flags.spec_n_max for c in done if c.method == "llama-server"] == [3, 1, 5]
    _done, within = _spec_run({1: (50.0, 1.0), 3: (60.0, 3.0), 5: (62.0, 3.0)})
    assert within is not None
    assert within.flags.spec_n_max is None  # within noise: the lock's n_max stays


def test_n_max_is_not_measured_when_another_build_won() -> None:
    done, winner = _spec_run({1: (50.0, 1.0), 3: (60.0, 1.0), 5: (90.0, 1.0)}, backend="vulkan")
    assert winner is not None
    assert winner.flags.spec_n_max is None
    assert not [c for c in done if c.method == "llama-server"]
