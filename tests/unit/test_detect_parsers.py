"""Parser unit tests on real recorded outputs (the shared bundles) and on this machine's files."""

from __future__ import annotations

from pathlib import Path

from stackctl.detect import parse_amd as amd
from stackctl.detect import parse_apple as mac
from stackctl.detect import parse_linux as lx
from stackctl.detect import parse_nvidia as nv
from stackctl.detect.chips import load_chip_table, match_chips, norm_name
from stackctl.detect.facts import GpuFacts, merge_sources, norm_pci, parse_size

HW = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "hw"


def _cmd(bundle: str, name: str) -> str:
    return (HW / bundle / "cmd" / name).read_text()


def test_lscpu_unwraps_hard_wrapped_flags() -> None:
    cpu = lx.parse_lscpu(_cmd("xeon-platinum-8462yplus-spr", "lscpu.txt"))
    assert (cpu.sockets, cpu.cores, cpu.threads, cpu.arch) == (2, 64, 128, "x86_64")
    for flag in ("avx512vbmi", "amx_tile", "avx512_bf16", "avx_vnni"):
        assert flag in cpu.flags
    # the cut words must not leak in as flags or fragments
    assert "512vbmi" not in cpu.flags
    assert "avx" in cpu.flags


def test_lscpu_grep_line_only() -> None:
    cpu = lx.parse_lscpu(_cmd("strix-halo-gmktec-rocm71", "lscpu.txt"))
    assert cpu.model == "AMD RYZEN AI MAX+ 395 w/ Radeon 8060S"
    assert cpu.cores is None
    assert cpu.threads is None


def test_cpuinfo_arm64_part_table() -> None:
    cpu, board = lx.parse_cpuinfo((HW / "rpi5-bcm2712" / "fs/proc/cpuinfo").read_text())
    assert cpu.model == "Cortex-A76"
    assert cpu.arch == "aarch64"
    assert (cpu.cores, cpu.threads) == (4, 4)
    assert board == "Raspberry Pi 5 Model B Rev 1.0"


def test_cpuinfo_and_meminfo_of_this_machine() -> None:
    cpu, _board = lx.parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    assert cpu.threads is not None
    assert cpu.threads >= 1
    total, avail = lx.parse_meminfo(Path("/proc/meminfo").read_text())
    assert total
    assert avail
    assert 0 < avail <= total


def test_cmdline_gtt_knobs_and_misspelling() -> None:
    facts = lx.parse_cmdline("quiet amd_iommu=off amdgpu.gttsize=126976 ttm.pages_limit=32505856")
    assert facts.ttm_pages_limit == 32505856
    assert facts.gtt_bytes == 32505856 * 4096
    assert facts.warnings == []  # 126976 MiB == 32505856 pages of 4 KiB
    bad = lx.parse_cmdline("quiet amdgpu.gtt_size=131072")
    assert bad.gtt_bytes is None
    assert any("ignores 'amdgpu.gtt_size'" in w for w in bad.warnings)


def test_uname_and_os_release() -> None:
    u = lx.parse_uname("Linux vm 6.18.44-fc-v1045 #1 SMP PREEMPT_DYNAMIC @0 x86_64 GNU/Linux")
    assert (u.system, u.hostname, u.kernel, u.machine) == (
        "linux",
        "vm",
        "6.18.44-fc-v1045",
        "x86_64",
    )
    assert lx.parse_uname("garbage") == lx.UnameFacts()
    assert lx.parse_os_release('NAME="Debian GNU/Linux"\nVERSION="12 (bookworm)"\n') == (
        "Debian GNU/Linux 12 (bookworm)"
    )


def test_lspci_display_controller() -> None:
    devs = lx.parse_lspci(_cmd("strix-halo-gmktec-rocm71", "lspci.txt"))
    assert [(d.slot, d.class_id, d.vendor_id, d.device_id) for d in devs] == [
        ("c5:00.0", "0380", "1002", "1586")
    ]


def test_nvidia_smi_table_eight_gpus() -> None:
    facts = nv.parse_nvidia_smi(_cmd("rtx4090-x8", "nvidia-smi.txt"))
    assert len(facts.gpus) == 8
    assert facts.driver_version == "550.127.05"
    assert facts.cuda_version == "12.4"
    assert facts.gpus[5].pci_bus_id == "0000:a1:00.0"
    assert {g.memory_bytes for g in facts.gpus} == {24564 * 1024**2}


def test_nvidia_smi_xml_mig() -> None:
    facts = nv.parse_nvidia_smi_xml(_cmd("a100-sxm4-80gb-mig", "nvidia-smi-q.xml"))
    (gpu,) = facts.gpus
    assert gpu.mig_enabled
    assert gpu.mig_instances == 4
    assert gpu.mig_instance_bytes == 19968 * 1024**2
    assert facts.attached == 4
    assert facts.warnings
    assert gpu.host_link == "PCIe 4.0 x16"  # pci_gpu_link_info: max gen 4, max width 16x


def test_a_detected_gpu_link_wins_over_the_cards_own() -> None:
    """The A100's nvidia-smi -q -x shows the link it trained at: the profile keeps it and
    says where it came from; a declared card has only the GPU database's interface."""
    from stackctl.detect import BundleRunner, declare_hardware, detect_hardware

    (acc,) = detect_hardware(BundleRunner(HW / "a100-sxm4-80gb-mig")).accelerators
    assert acc.host_link == "PCIe 4.0 x16"
    assert acc.host_link_source is not None
    assert acc.host_link_source.startswith("the link it trained at")
    (card,) = declare_hardware(gpus=["rtx 4060"]).accelerators
    assert (card.host_link, card.host_link_source) == (
        "PCIe 4.0 x8",
        "the card's own interface, GPU database row GeForce RTX 4060",
    )


def test_nvidia_smi_xml_cut_short_keeps_header() -> None:
    text = _cmd("a100-sxm4-80gb-mig", "nvidia-smi-q.xml")
    facts = nv.parse_nvidia_smi_xml(text[: len(text) // 2])
    assert facts.driver_version == "535.54.03"
    assert facts.gpus == []
    assert any("not well-formed" in w for w in facts.warnings)


def test_nvidia_csv_and_list() -> None:
    csv_facts = nv.parse_nvidia_smi_csv(_cmd("titanv-plus-rtx5880ada", "nvidia-smi-query.csv"))
    assert [g.arch for g in csv_facts.gpus] == ["sm_70", "sm_89"]
    assert [g.name for g in csv_facts.gpus] == ["NVIDIA TITAN V", "NVIDIA RTX 5880 Ada Generation"]
    lst = nv.parse_nvidia_smi_list(_cmd("titanv-plus-rtx5880ada", "nvidia-smi-L.txt"))
    assert [g.index for g in lst.gpus] == [0, 1]


def test_nvml_printout_round_trip() -> None:
    # stackctl's own NVML printout format (probe_nvml writes it); the values are the DGX Spark
    # bundle's (SOURCE.md) and NVML's NotSupported on GB10 (engines.md 5.3).
    text = (
        "driver_version: 580.126.09\ncuda_driver_version: 13000\ndevice_count: 1\n"
        "gpu.0.name: NVIDIA GB10\ngpu.0.memory_total: not supported (NVMLError_NotSupported)\n"
        "gpu.0.compute_capability: 12.1\ngpu.0.mig_mode: not supported (NVMLError_NotSupported)\n"
    )
    facts = nv.parse_nvml(text)
    assert facts.cuda_version == "13.0"
    (gpu,) = facts.gpus
    assert gpu.arch == "sm_121"
    assert gpu.memory_bytes is None
    assert gpu.mig_enabled is None


def test_probe_nvml_without_gpu_returns_none() -> None:
    assert nv.probe_nvml() is None  # this machine has no NVIDIA driver


def test_rocminfo_agents() -> None:
    facts = amd.parse_rocminfo(_cmd("strix-halo-gmktec-rocm71", "rocminfo.txt"))
    (gpu,) = facts.gpus
    assert gpu.arch == "gfx1151"
    assert gpu.integrated is True
    assert gpu.pci_bus_id == "0000:c5:00.0"
    assert gpu.pci_id == "1002:1586"
    assert gpu.budget_bytes == 67108864 * 1024
    assert facts.npus == ["aie2"]
    assert facts.cpu_threads == 32
    mi = amd.parse_rocminfo(_cmd("mi300x-x4-epyc9474f", "rocminfo.txt"))
    assert len(mi.gpus) == 4
    assert mi.cpu_threads == 192
    assert mi.cpu_agents == 2


def test_rocm_smi_text_csv_json_agree() -> None:
    csv_facts = amd.parse_rocm_smi(_cmd("rx7900xt-gfx1100", "rocm-smi.txt"))
    json_facts = amd.parse_rocm_smi_json(_cmd("rx7900xt-gfx1100", "rocm-smi.json"))
    for facts in (csv_facts, json_facts):
        (gpu,) = facts.gpus
        assert (gpu.name, gpu.arch, gpu.memory_bytes) == (
            "Radeon RX 7900 XT",
            "gfx1100",
            21458059264,
        )
    text = amd.parse_rocm_smi(_cmd("mi300x-x4-epyc9474f", "rocm-smi.txt"))
    assert text.driver_version == "6.7.0"
    assert len(text.gpus) == 4
    assert text.gpus[0].name == "AMD Instinct MI300X OAM"


def test_drm_card_pools() -> None:
    root = HW / "strix-halo-rog-flow-z13-gtt96/fs/sys/class/drm/card1/device"
    files = {p.name: p.read_text() for p in root.iterdir()}
    gpu = amd.parse_drm_card(files)
    assert gpu is not None
    assert (gpu.gtt_bytes, gpu.carveout_bytes) == (103079215104, 4294967296)
    assert amd.parse_drm_card({"uevent": "DRIVER=i915\n"}) is None


def test_sysctl_set_form_and_llama_devices() -> None:
    kv = mac.parse_sysctl(_cmd("apple-m1-max-32gb-wiredlimit", "sysctl.txt"))
    assert kv == {"iogpu.wired_limit_mb": "26000"}
    (gpu,) = mac.parse_llama_devices(_cmd("apple-m1-max-32gb-wiredlimit", "llama-list-devices.txt"))
    assert gpu.vendor == "apple"
    assert gpu.budget_bytes == 26000 * 1024**2


def test_system_profiler_text() -> None:
    facts = mac.parse_system_profiler(_cmd("apple-m1-pro-macbookpro18-1", "system_profiler.txt"))
    assert facts.chip == "Apple M1 Pro"
    assert facts.model_id == "MacBookPro18,1"
    assert (facts.cores, facts.performance_cores, facts.efficiency_cores) == (10, 8, 2)
    assert facts.memory_bytes == 16 * 1024**3


def test_clinfo_zero_platforms() -> None:
    assert mac.parse_clinfo(_cmd("strix-halo-gmktec-rocm71", "clinfo.txt")).platforms == 0


def test_size_and_pci_helpers() -> None:
    assert parse_size("24564 MiB") == 24564 * 1024**2
    assert parse_size("201310208(0xbffc000) KB") == 201310208 * 1024
    assert parse_size("N/A") is None
    assert norm_pci("0000000F:01:00.0") == "000f:01:00.0"
    assert norm_pci("00000000:A1:00.0") == "0000:a1:00.0"


def test_merge_keeps_the_longest_device_list() -> None:
    short = [GpuFacts("nvidia", "a", index=0, name="x")]
    long = [GpuFacts("nvidia", "b", index=0), GpuFacts("nvidia", "b", index=1)]
    merged = merge_sources([short, long])
    assert len(merged) == 2
    assert merged[0].name == "x"
    assert merged[1].name is None


def test_chip_names_match_with_and_without_vendor() -> None:
    table = load_chip_table()
    for name in ("NVIDIA GeForce RTX 3090", "rtx3090", "RTX 3090", "geforce rtx 3090"):
        assert [c.id for c in match_chips(table, name)] == ["rtx-3090"], name
    assert norm_name("AMD Ryzen AI Max+ 395") == "ryzenaimaxplus395"
    # no fuzzy borrowing of figures: the 4090 D is its own row in the GPU database
    assert [c.id for c in match_chips(table, "RTX 4090 D")] == ["rtx-4090-d"]
    assert match_chips(table, "RTX 4095") == []


def test_chip_table_figures_all_have_sources() -> None:
    table = load_chip_table()
    for chip in table.chips:
        if chip.bandwidth_gbps is not None:
            assert chip.bandwidth_source, chip.id
            assert chip.bandwidth_basis, chip.id
        if chip.peak_tflops_fp16 is not None:
            assert chip.peak_source, chip.id
    ids = {c.id for c in table.chips}
    for chip_id in [
        "ryzen-ai-max-plus-395",
        "apple-m3-max-40c",
        "gb10",
        "raspberry-pi-5",
        "epyc-9654",
    ]:
        assert chip_id in ids, chip_id
    need_text = """
        rtx-2080-ti rtx-3090 rtx-4090 rtx-5090 a100-sxm4-80gb h100-sxm h200 rtx-pro-6000-blackwell
        rx-6800-xt rx-7900-xtx rx-9070-xt mi300x
    """
    for chip_id in need_text.split():
        (chip,) = [c for c in match_chips(table, chip_id, gpu=True) if c.id == chip_id]
        assert chip.bandwidth_gbps, chip_id
        assert chip.bandwidth_source, chip_id
        assert chip.peak_tflops_fp16, chip_id
        assert chip.peak_source, chip_id
