"""Estimator: catalogs, layouts, GGUF reader, memory formulas, CLI contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackctl.cli import main
from stackctl.errors import EstimateError
from stackctl.estimate import estimate, hosts, load_estimate_catalog, lookup_model
from stackctl.estimate.catalog import EstimateCatalog, lookup_quant
from stackctl.estimate.gguf import read_gguf
from stackctl.estimate.shapes import write_catalog_shape
from stackctl.models.estimate import EstimateRequest
from stackctl.models.hardware import HardwareProfile
from stackctl.resources import catalog_dir
from tests.support.mirror_fill import DEFAULT_MIRROR, GEMMA_FILE

REAL_GEMMA = DEFAULT_MIRROR / GEMMA_FILE  # scripts/test.sh fills the mirror before the tests
# Sum of tensor bytes in the real gemma-3-270m Q4_K_M GGUF header (236 tensors), read with gguf-py.
REAL_GEMMA_WEIGHTS = 246_587_904


@pytest.fixture(scope="module")
def cat() -> EstimateCatalog:
    return load_estimate_catalog(catalog_dir())


def cpu_host(ram_gib: int = 22) -> HardwareProfile:
    return hosts.cpu_host(2, ["avx2"], memory_bytes=ram_gib << 30)


@pytest.mark.parametrize("name", ["Qwen3-30B-A3B", "qwen3:30b-a3b", "Qwen/Qwen3-30B-A3B"])
def test_aliases(name: str, cat: EstimateCatalog) -> None:
    assert lookup_model(name, cat) == "qwen3-30b-a3b"


def test_unknown_model_names_closest(cat: EstimateCatalog) -> None:
    with pytest.raises(EstimateError) as err:
        lookup_model("gemma-3-27", cat)
    assert err.value.hint is not None
    assert "gemma-3-27b" in err.value.hint


def test_unknown_quant(cat: EstimateCatalog) -> None:
    assert lookup_quant("q4_k_m", cat) == "Q4_K_M"
    assert lookup_quant("MXFP4", cat) == "MXFP4_MOE"
    with pytest.raises(EstimateError, match="unknown quant"):
        lookup_quant("Q4_K_X", cat)


def test_catalog_layout_matches_real_gemma_file(cat: EstimateCatalog) -> None:
    result = estimate(
        EstimateRequest(model="gemma-3-270m", quant="Q4_K_M", ctx=4096), cpu_host(), catalog=cat
    )
    assert result.memory.weights_bytes == REAL_GEMMA_WEIGHTS
    assert result.fits


def test_shape_gguf_roundtrip(tmp_path: Path, cat: EstimateCatalog) -> None:
    path = tmp_path / "q.gguf"
    size, tensors = write_catalog_shape(path, "qwen3-30b-a3b", "Q4_K_M", cat)
    gguf = read_gguf(path)
    assert gguf.arch == "qwen3moe"
    assert len(gguf.tensors) == len(tensors)
    assert path.stat().st_size == size
    by_file = estimate(
        EstimateRequest(model="", quant="", gguf_path=str(path)), cpu_host(64), catalog=cat
    )
    by_catalog = estimate(
        EstimateRequest(model="qwen3-30b-a3b", quant="Q4_K_M"), cpu_host(64), catalog=cat
    )
    assert by_file.memory.weights_bytes == by_catalog.memory.weights_bytes
    assert by_file.memory.kv_bytes == by_catalog.memory.kv_bytes


@pytest.mark.skipif(not REAL_GEMMA.is_file(), reason="real Gemma 3 270M file not in the mirror")
def test_real_gemma_header() -> None:
    gguf = read_gguf(REAL_GEMMA)
    assert gguf.arch == "gemma3"
    assert len(gguf.tensors) == 236
    assert gguf.arch_key("attention.sliding_window") == 512


def test_not_a_gguf(tmp_path: Path) -> None:
    path = tmp_path / "x.gguf"
    path.write_bytes(b"not a model at all")
    with pytest.raises(EstimateError, match=r"x\.gguf: not a readable GGUF"):
        read_gguf(path)


def test_truncated_gguf(tmp_path: Path, cat: EstimateCatalog) -> None:
    path = tmp_path / "t.gguf"
    write_catalog_shape(path, "gemma-3-270m", "Q4_K_M", cat)
    data = path.read_bytes()[:5000]
    path.write_bytes(data)
    with pytest.raises(EstimateError, match=r"t\.gguf"):
        read_gguf(path)
    with pytest.raises(EstimateError, match="truncated"):
        estimate(EstimateRequest(model="", quant="", gguf_path=str(path)), cpu_host(), catalog=cat)


def test_ctx_above_native(cat: EstimateCatalog) -> None:
    with pytest.raises(EstimateError, match="above the model's native"):
        estimate(
            EstimateRequest(model="gemma-3-270m", quant="Q4_K_M", ctx=65536),
            cpu_host(),
            catalog=cat,
        )


def test_not_fitting_is_an_answer(cat: EstimateCatalog) -> None:
    result = estimate(
        EstimateRequest(model="qwen3-32b", quant="Q8_0", ctx=8192), cpu_host(8), catalog=cat
    )
    assert not result.fits
    assert result.memory.devices[-1].shortfall_bytes > 0


def test_quantized_kv_is_smaller(cat: EstimateCatalog) -> None:
    f16 = estimate(EstimateRequest(model="llama-3.1-8b", quant="Q4_K_M", ctx=32768), cpu_host(64),
                   catalog=cat)  # fmt: skip
    q8 = estimate(
        EstimateRequest(model="llama-3.1-8b", quant="Q4_K_M", ctx=32768, cache_type_k="q8_0",
                        cache_type_v="q8_0"), cpu_host(64), catalog=cat,
    )  # fmt: skip
    # 32 layers x 2 x 1024 wide x 32768 cells: f16 2 bytes, q8_0 34/32 bytes per element
    assert f16.memory.kv_bytes == 32 * 2 * 1024 * 32768 * 2
    assert q8.memory.kv_bytes == 32 * 2 * 1024 * 32768 * 34 // 32


def test_swa_and_recurrent_state(cat: EstimateCatalog) -> None:
    gemma = estimate(EstimateRequest(model="gemma-3-27b", quant="Q4_K_M", ctx=32768),
                     cpu_host(64), catalog=cat)  # fmt: skip
    # 10 full layers at 32768 cells + 52 SWA layers at pad256(1024 + 512) cells; 16 x 128 wide
    row = 16 * 128 * 2 * 2
    assert gemma.memory.kv_bytes == 10 * row * 32768 + 52 * row * 1536
    qwen = estimate(EstimateRequest(model="qwen3.6-27b", quant="Q4_K_M", ctx=4096, parallel=2),
                    cpu_host(64), catalog=cat)  # fmt: skip
    # 48 DeltaNet layers: conv 3 x (6144 + 2 x 16 x 128) + state 128 x 6144, f32, 2 sequences
    assert qwen.memory.state_bytes == 48 * (3 * (6144 + 4096) + 128 * 6144) * 4 * 2


def test_cli_json_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "hw.yaml"
    profile.write_text(
        "name: t\ncpu: {arch: x86_64, cores: 2, flags: [avx2]}\n"
        "memory: {total_bytes: 8589934592, available_bytes: 8589934592}\nos: {system: linux}\n",
        encoding="utf-8",
    )
    code = main(["estimate", "--model", "gemma-3-270m", "--quant", "Q4_K_M", "--hardware",
                 str(profile), "--json"])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["schema_version"] == 1
    assert set(out["memory"]) >= {"weights_bytes", "kv_bytes", "compute_bytes", "total_bytes"}
    device = out["memory"]["devices"][0]
    assert device["device"] == "host"
    assert device["budget_bytes"] > 0
    assert set(out["speed"]) >= {"tg_tps", "tg_tps_range", "pp_tps", "pp_tps_range", "ttft_s"}
    assert out["basis"]
    assert main(["estimate", "--model", "nope-9b", "--hardware", str(profile)]) == 2
    assert main(["estimate", "--model", "gemma-3-270m", "--ctx", "-5", "--hardware",
                 str(profile)]) == 2  # fmt: skip


DATA = Path(__file__).parent.parent / "data" / "estimate" / "fit_params_cpu.json"


@pytest.mark.parametrize("ctx", [4096, 32768])
def test_memory_matches_fit_params_measurements(ctx: int, cat: EstimateCatalog) -> None:
    """The catalog layout of Gemma 3 270M against llama-fit-params on the real file."""
    rows = json.loads(DATA.read_text(encoding="utf-8"))["rows"]
    case = f"REAL gemma-3-270m Q4_K_M c{ctx} f16/f16 np1"
    real = next(r["real"] for r in rows if r["case"] == case)
    mem = estimate(
        EstimateRequest(model="gemma-3-270m", quant="Q4_K_M", ctx=ctx), cpu_host(), catalog=cat
    ).memory
    mib = float(1 << 20)
    assert abs(mem.kv_bytes / mib - real["context"]) <= 0.01 * real["context"]
    assert abs(mem.compute_bytes / mib - real["compute"]) <= 0.01 * real["compute"]
    assert real["model"] <= mem.weights_bytes / mib < real["model"] + real["model_rows"]


def test_cli_says_what_the_declared_hardware_rests_on(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["estimate", "--model", "llama-3.1-8b", "--gpu", "Apple M3 Max", "--ram", "36"]
    assert main([*argv, "--json"]) == 0
    warnings = json.loads(capsys.readouterr().out)["hardware_warnings"]
    assert any("GPU budget is macOS's default 75% of RAM" in w for w in warnings)
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert all(f"  hardware: {w}" in text for w in warnings)


def test_cli_headline_says_where_the_fit_was_not_checked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # no --ram: the unified GPU's budget is unknown, so "fits" would claim what was not checked
    assert main(["estimate", "--model", "llama-3.1-8b", "--gpu", "Apple M3 Max"]) == 0
    headline = capsys.readouterr().out.splitlines()[0]
    assert headline == "llama-3.1-8b Q4_K_M: fits (gpu0: no budget known, not checked)"
    argv = ["estimate", "--model", "llama-3.1-8b", "--gpu", "Apple M3 Max", "--ram", "36"]
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines()[0] == "llama-3.1-8b Q4_K_M: fits"


def test_cli_on_an_amx_cpu_says_a_plan_serves_it_without_repack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """llama-bench's default runs the AMX buffer; a plan serves the pinned build with
    --no-repack there (quirk x86-amx-no-repack): the estimate says so, and --no-repack gives
    the figure of what is served (the VNNI kernels' share of the measured bandwidth)."""
    profile = tmp_path / "hw.yaml"
    profile.write_text(
        "name: t\ncpu: {arch: x86_64, cores: 2, flags: [avx2, avx512_vnni, amx_int8, amx_tile],"
        " bandwidth_gbps: 21.0, bandwidth_source: measured}\n"
        "memory: {total_bytes: 8589934592, available_bytes: 8589934592}\nos: {system: linux}\n",
        encoding="utf-8",
    )
    argv = ["estimate", "--model", "gemma-3-270m", "--hardware", str(profile), "--json"]
    assert main(argv) == 0
    default = json.loads(capsys.readouterr().out)
    assert any("--no-repack (quirk x86-amx-no-repack" in w for w in default["hardware_warnings"])
    assert main([*argv, "--no-repack"]) == 0
    served = json.loads(capsys.readouterr().out)
    assert not any("x86-amx-no-repack" in w for w in served["hardware_warnings"])
    assert served["speed"]["tg_tps"] < default["speed"]["tg_tps"]
    assert any("int8 dot-product CPU's efficiency spread" in b for b in served["basis"])
