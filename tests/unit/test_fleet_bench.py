"""`bench -i`: which hosts the controller can measure, with the key apply -i brought back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from stackctl.fleet.bench import bench_targets
from stackctl.fleet.run import host_key_file, make_keys_dir

INVENTORY = """\
all:
  vars:
    stackctl_stack: ../net-tiny.yaml
    stackctl_hardware: {cpu: Ryzen 9 7950X, ram: 64}
  hosts:
    a: {ansible_host: 192.0.2.30}
    b: {ansible_host: 192.0.2.31}
    local: {ansible_host: 192.0.2.32, stackctl_stack: tiny-cpu}
"""

STACK = """\
name: net-tiny
workload: chat
context: 2048
pin: {model: gemma-3-270m, quant: Q4_K_M}
serve: {host: 0.0.0.0, port: 8090}
"""


def stackctl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackctl", *args],
        cwd=cwd, text=True, capture_output=True, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_only_hosts_with_a_key_and_a_network_bind_are_measured(in_tmp: Path) -> None:
    (in_tmp / "net-tiny.yaml").write_text(STACK)
    (in_tmp / "inventories").mkdir()
    inventory = in_tmp / "inventories" / "lab.yml"
    inventory.write_text(INVENTORY)
    locked = stackctl("fleet", "lock", "-i", str(inventory), cwd=in_tmp)
    assert locked.returncode == 0, locked.stderr

    targets, skipped = bench_targets(inventory)
    assert targets == []
    assert skipped["a"].startswith("no API key for it here")
    assert skipped["local"].startswith("listens on loopback only")

    make_keys_dir(inventory)
    host_key_file(inventory, "a").write_text("secret-a\n")
    targets, skipped = bench_targets(inventory, limit="a,local")
    assert [(t.host, t.url, t.api_key) for t in targets] == [
        ("a", "http://192.0.2.30:8090", "secret-a")
    ]
    assert targets[0].hardware.cpu is not None
    assert "secret-a" not in repr(targets[0])  # keys stay out of logs and tracebacks
    assert set(skipped) == {"local"}


def test_bench_i_refuses_options_that_need_a_single_endpoint(in_tmp: Path) -> None:
    done = stackctl("bench", "-i", "inventories/none.yml", "--url", "http://x:1", cwd=in_tmp)
    assert done.returncode != 0
    assert "no LOCK, --url, --sweep or --llama-bench" in done.stderr
    assert "Traceback" not in done.stderr


def test_first_fetch_fills_each_hosts_lock_and_identical_hosts_stay_identical(
    in_tmp: Path,
) -> None:
    from stackctl.fleet.deploy import record_fetched
    from stackctl.fleet.plan import PlannedHost
    from stackctl.lock import make_lockfile, read_lockfile
    from stackctl.models.apply import HostStats, PlaybookResult
    from stackctl.models.fleet import FleetHost
    from tests.support.render_cases import BY_NAME

    golden = read_lockfile(BY_NAME["cpu-x86"].lock_path)
    r = golden.resolved
    unknown = r.model.model_copy(
        update={"artefact": r.model.artefact.model_copy(update={"sha256": None, "verified": False})}
    )
    lock = make_lockfile(r.model_copy(update={"model": unknown}), golden.inputs)
    hosts = [FleetHost(name=n, address=n, stack="tiny-cpu", hardware=None) for n in "abc"]
    planned = [PlannedHost(h, in_tmp / f"{h.name}.lock.yaml", lock=lock) for h in hosts]
    sha = "ab" * 32
    result = PlaybookResult(
        playbook="playbook.yml", check=False, changed_tasks=[], failed_tasks=[],
        hosts={n: HostStats() for n in ("a", "b", "c")},
        fetched_by_host={"a": {"model": sha}, "b": {"model": sha}},  # c failed before its fetch
    )  # fmt: skip
    written = record_fetched(planned, result, "inventory lab")
    assert written == [in_tmp / "a.lock.yaml", in_tmp / "b.lock.yaml"]
    a, b = (read_lockfile(p) for p in written)
    assert a.resolved.model.artefact.sha256 == sha
    assert a.resolved.model.artefact.verified is True
    assert "first fetch on inventory lab" in a.resolved.model.artefact.origin
    assert a.content_hash == b.content_hash
    assert not (in_tmp / "c.lock.yaml").exists()
