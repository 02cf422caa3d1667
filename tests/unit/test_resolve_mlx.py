"""mlx-lm on Apple silicon (issue 14 item 5): the engine decision from published same-box runs,
the lock it writes, and the launchd job it renders.

Declared Apple boxes stand in for real ones: a 36 GB M4 Max (only the 4-bit files fit, so the
4-bit pair decides) and the 512 GB M3 Ultra (the 8-bit file wins on quality; no 8-bit evidence).
"""

from __future__ import annotations

import plistlib
import statistics
from typing import Any

import pytest

from stackctl.catalog import load_catalog
from stackctl.detect import declare_hardware
from stackctl.estimate import estimate
from stackctl.estimate.mlx_speed import verdict
from stackctl.lock import make_lockfile
from stackctl.models.catalog import Catalog, EngineComparison, MlxRules
from stackctl.models.estimate import EstimateRequest
from stackctl.models.lock import InputRef, LockInputs
from stackctl.models.spec import StackSpec
from stackctl.render import make_environment, render_stack
from stackctl.resolve import Resolution, Resolver, make_resolver
from stackctl.resources import catalog_dir, roles_dir, templates_dir

M4_MAX_36 = {"gpus": ["Apple M4 Max"], "ram_gib": 36}
# on 36 GB the dense 27B at Q8_0 scores a hair above the 35B-A3B MoE (76.2 vs 75.8): a user who
# asks for an MoE gets the 4-bit pair that decides between the engines
MOE = {"preferences": {"architecture": "moe"}}
M3_ULTRA = {"gpus": [], "system": "Mac Studio M3 Ultra 512GB"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(catalog_dir())


@pytest.fixture(scope="module")
def rules(catalog: Catalog) -> MlxRules:
    entry = next(e for e in catalog.engines if e.name == "mlx-lm")
    assert entry.mlx is not None
    return entry.mlx


@pytest.fixture(scope="module")
def resolver(catalog: Catalog) -> Resolver:
    return make_resolver(catalog)


def _plan(resolver: Resolver, hardware: dict[str, Any], **spec: object) -> Resolution:
    body = {"name": "default", "workload": "chat", "context": 4096, **spec}
    return resolver.resolve(StackSpec.model_validate(body), declare_hardware(**hardware), top=12)


def test_moe_4bit_evidence_favours_mlx_by_the_published_ratio(rules: MlxRules) -> None:
    v = verdict(rules, "qwen3.6-35b-a3b", True, "MLX-4bit")
    # no row for the model itself: MoE rows at 4 bits, the bug-report row left out
    counted = [r for r in rules.versus_llamacpp if r.moe and r.bits == 4 and r.counted]
    assert [r.model for r in v.rows] == [r.model for r in counted] == ["qwen3-30b-a3b"]
    assert v.mlx_faster
    assert v.tg_ratio == pytest.approx(68.016 / 57.26)
    assert v.pp_ratio == pytest.approx(1160.636 / 320.66)
    assert "https://github.com/ml-explore/mlx-lm/issues/92" in v.why
    assert "quality treated as equal" in v.why


def test_dense_4bit_ratio_is_the_median_of_the_dense_rows(rules: MlxRules) -> None:
    v = verdict(rules, "qwen3.6-27b", False, "MLX-4bit")
    dense = [r for r in rules.versus_llamacpp if not r.moe and r.bits == 4 and r.counted]
    assert len(dense) == 3
    assert v.tg_ratio == pytest.approx(statistics.median(r.mlx_tg / r.gguf_tg for r in dense))
    assert v.mlx_faster


def test_no_8bit_evidence_keeps_llamacpp(rules: MlxRules) -> None:
    v = verdict(rules, "qwen3.6-35b-a3b", True, "MLX-8bit")
    assert not v.mlx_faster
    assert v.tg_ratio is None
    assert not v.rows
    assert "no published same-box comparison of MLX 8-bit and Q8_0" in v.why


def test_a_ratio_within_the_margin_keeps_llamacpp(rules: MlxRules) -> None:
    even = EngineComparison(
        chip="apple-m4", model="qwen3-8b", moe=False, bits=4, mlx_quant="4bit",
        gguf_quant="Q4_K_M", mlx_tg=41.0, gguf_tg=40.0, versions="-", url="u", date="d",
        source="s",
    )  # fmt: skip
    mine = rules.model_copy(update={"versus_llamacpp": [even]})
    v = verdict(mine, "qwen3-8b", False, "MLX-4bit")
    assert not v.mlx_faster
    assert v.why.startswith("llama.cpp Q4_K_M over mlx-lm MLX-4bit: decode x1.02")
    assert "<= the x1.05 noise margin" in v.why


def test_m4_max_36_serves_the_4bit_moe_with_mlx(resolver: Resolver) -> None:
    result = _plan(resolver, M4_MAX_36, **MOE)
    c, r = result.chosen, result.resolved
    assert (c.entry.id, c.artefact.quant, c.engine.name) == (
        "qwen3.6-35b-a3b",
        "MLX-4bit",
        "mlx-lm",
    )
    # the catalog's GGUF of this model is UD-Q4_K_XL (no public Q4_K_M file): the comparison is
    # against llama.cpp's own estimate of Q4_K_M, the evidence's bit width
    assert any(line.startswith("engine mlx-lm: mlx-lm MLX-4bit over llama.cpp Q4_K_M")
               for line in r.reasons)  # fmt: skip
    # speed: llama.cpp's own estimate on this box x the evidence, within physics
    base = next(b for b in r.predicted.basis if b.startswith("mlx-lm speed: llama.cpp Q4_K_M"))
    assert "x1.19 decode" in base
    bound = 410e9 / (c.estimate.memory.weights_bytes * 3 / 35)  # type: ignore[union-attr]
    assert 0 < c.tg <= bound
    assert c.tg_range[0] <= c.tg <= c.tg_range[1] <= bound
    assert 0 < c.pp_range[0] <= c.pp <= c.pp_range[1]


def test_m3_ultra_keeps_llamacpp_at_8bit_and_says_why(resolver: Resolver) -> None:
    result = _plan(resolver, M3_ULTRA)
    c, r = result.chosen, result.resolved
    assert (c.artefact.quant, c.engine.name) == ("Q8_0", "llama.cpp")
    assert any("llama.cpp over mlx-lm MLX-8bit: no published same-box comparison" in line
               for line in r.reasons)  # fmt: skip
    mlx = next(x for x in result.rejected
               if x.entry.id == c.entry.id and x.artefact.quant == "MLX-8bit")  # fmt: skip
    assert mlx.reject is not None
    assert mlx.reject.startswith("engine: llama.cpp over mlx-lm")


def test_mlx_is_never_offered_beyond_loopback(resolver: Resolver) -> None:
    result = _plan(resolver, M4_MAX_36, serve={"host": "0.0.0.0", "port": 8080})
    assert result.chosen.engine.name == "llama.cpp"
    mlx = [x for x in result.rejected if x.engine.name == "mlx-lm"]
    assert mlx
    assert all("no API key" in (x.reject or "") for x in mlx)


def test_mlx_is_not_offered_off_apple(resolver: Resolver) -> None:
    result = _plan(resolver, {"gpus": ["RTX 4090"], "ram_gib": 64}, preferences={})
    assert all(x.engine.name != "mlx-lm" for x in [result.chosen, *result.rejected])


def test_lock_pins_mlx_lm_and_the_snapshot(resolver: Resolver) -> None:
    resolved = _plan(resolver, M4_MAX_36, **MOE).resolved
    ref = InputRef(name="t", path=None, sha256="0" * 64)
    lock = make_lockfile(resolved, LockInputs(stack=ref, hardware=ref, catalog=ref))
    e, m = lock.resolved.engine, lock.resolved.model
    assert (e.name, e.version, e.backend) == ("mlx-lm", "0.32.2", "metal")
    assert e.source.file == "mlx_lm-0.32.2-py3-none-any.whl"
    assert e.source.sha256 == "5c0991248cfff5872503d74f466d2532dd8cb7fb3670cb9be7a06d7305dadc04"
    assert e.source.size == 546040
    assert e.source.verified
    assert e.targets == ["mlx_lm.server"]
    assert (m.repo, m.quant, m.artefact.file) == (
        "mlx-community/Qwen3.6-35B-A3B-4bit",
        "MLX-4bit",
        "Qwen3.6-35B-A3B-4bit",
    )
    # not published: the catalog marks the figure as derived, with its formula
    assert m.artefact.size == 19_687_500_000
    assert m.artefact.sha256 is None
    args = lock.resolved.runtime.server_args
    assert args[:4] == ["--host", "127.0.0.1", "--port", "8080"]
    assert args[args.index("--allowed-origins") + 1] == "http://127.0.0.1:8080"
    assert int(args[args.index("--prompt-cache-bytes") + 1]) > 0
    assert lock.resolved.runtime.threads is None


def test_rendered_launchd_job_runs_mlx_lm_server_from_its_venv(resolver: Resolver) -> None:
    resolved = _plan(resolver, M4_MAX_36, **MOE).resolved
    ref = InputRef(name="t", path=None, sha256="0" * 64)
    lock = make_lockfile(resolved, LockInputs(stack=ref, hardware=ref, catalog=ref))
    env = make_environment(templates_dir())
    rendered = render_stack(lock, env, roles=roles_dir(), lock_name="x.lock.yaml")
    files = {f.path: f.content for f in rendered}
    job = plistlib.loads(files["files/stackctl-default.plist"].encode())
    argv = job["ProgramArguments"]
    assert argv[0].endswith(
        f"/engines/mlx-lm-{lock.resolved.engine.build_key}/venv/bin/mlx_lm.server"
    )
    assert argv[1:3] == ["--model", "/var/lib/stackctl/models/unverified-qwen3.6-35b-a3b/"
                         "Qwen3.6-35B-A3B-4bit"]  # fmt: skip
    assert "--api-key-file" not in argv
    assert job["EnvironmentVariables"] == {"HF_HUB_OFFLINE": "1"}
    assert "stackctl_engine_mlx" in files["playbook.yml"]
    assert "stackctl_model\n" not in files["playbook.yml"]
    assert "repo: mlx-community/Qwen3.6-35B-A3B-4bit" in files["group_vars/all/stackctl.yml"]


def test_plan_and_estimate_give_one_mlx_figure(resolver: Resolver) -> None:
    """`stackctl estimate --engine mlx` says what the plan locks (estimate/mlx_speed.py)."""
    r = _plan(resolver, M4_MAX_36, **MOE).resolved
    request = EstimateRequest(model="qwen3.6-35b-a3b", quant="MLX-4bit", engine="mlx",
                              backend="metal", ctx=4096)  # fmt: skip
    est = estimate(request, declare_hardware(gpus=["Apple M4 Max"], ram_gib=36))
    assert r.predicted.tg_tps == round(est.speed.tg_tps, 1)
    assert r.predicted.tg_tps_range == tuple(round(x, 1) for x in est.speed.tg_tps_range)
    assert r.predicted.pp_tps == round(est.speed.pp_tps, 1)
