"""A fleet over SSH for real: four host containers (sshd + Python, from the debootstrap base),
one inventory, a lock per host, one ansible-playbook run.

- strix (Strix Halo 128GB) and gpu8 (RTX 3060 Ti 8 GB + 64 GB RAM) are declared GPU boxes. They
  cannot reach a vendor's repositories or hold a GPU here, so they run in check mode, with the host
  layer skipped by the documented inventory flag `stackctl_host_layer: false` (and
  `stackctl_install_build_deps: false`): we assert that each got its own lock and rendered files
  and that nothing was installed on it.
- cpu-a and cpu-b are declared with the same CPU profile (this machine's, from `stackctl detect`:
  the containers share its CPU), so they resolve once to an identical lock. They apply for
  real and serve Gemma 3 270M from the test mirror; the controller asks each over the private
  network.
- The llama.cpp build is seeded into the CPU containers from the controller's build cache
  (/var/cache/stackctl/build/llama.cpp-<key>, the same CPU and flags, so the same key) by a
  read-only bind mount at the same path; the role then finds build.ok and skips the compile.

Run it alone, under the heavy-job lock:
  flock /tmp/stackctl-heavy.lock .venv/bin/pytest -m fleet tests/e2e/test_fleet_e2e.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from ruamel.yaml import YAML

from stackctl.pipeline import load_stack_inputs, make_lock
from stackctl.spec import load_profile
from tests.support.fleet_lab import Host, HostSpec, Lab, remove_leftovers
from tests.support.mirror_fill import DEFAULT_MIRROR, GEMMA_SHA256, fill_mirror

pytestmark = pytest.mark.fleet

BUILD_CACHE = Path("/var/cache/stackctl/build")
STACK = "fleet-tiny"
GPU_HOSTS = ["strix", "gpu8"]
CPU_HOSTS = ["cpu-a", "cpu-b"]
BROKEN_HOSTS = ["ghost", "nopython"]  # no container at its address; a container without Python
SERVICE = f"stackctl-{STACK}"


def stackctl(*args: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackctl", *args],
        cwd=cwd, text=True, capture_output=True, timeout=timeout,
        stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip


def as_json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON (rc {done.returncode}):\n{done.stderr[-6000:]}") from None
    assert data["schema_version"] == 1
    return data


def by_host(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["host"]: h for h in data["hosts"]}


def key_file(project: Path, host: str) -> Path:
    """Where apply -i left the host's API key on the controller (the servers bind 0.0.0.0)."""
    return project / "build" / "fleet" / "lab.keys" / f"{host}.api-key"


def request(project: Path, host: str, address: str, path: str, body: bytes | None = None) -> Any:
    key = key_file(project, host).read_text().strip()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    sent = urllib.request.Request(f"http://{address}:8080{path}", data=body, headers=headers)
    with urllib.request.urlopen(sent, timeout=120) as response:
        return json.loads(response.read())


def complete(fleet: Fleet, host: str, prompt: str = "1, 2, 3, 4, 5,") -> str:
    body = json.dumps({"prompt": prompt, "max_tokens": 8, "temperature": 0}).encode()
    answer = request(fleet.project, host, fleet.hosts[host].address, "/v1/completions", body)
    return str(answer["choices"][0]["text"])


def n_ctx(fleet: Fleet, host: str) -> int:
    props = request(fleet.project, host, fleet.hosts[host].address, "/props")
    settings = props.get("default_generation_settings", {})
    return int(settings.get("n_ctx") or props["n_ctx"])


def write_stack(project: Path, context: int, port: int = 8080) -> None:
    (project / f"{STACK}.yaml").write_text(
        f"name: {STACK}\n"
        "description: Gemma 3 270M served on the fleet network.\n"
        f"workload: chat\ncontext: {context}\nusers: 1\n"
        "pin:\n  model: gemma-3-270m\n  quant: Q4_K_M\n"
        f"serve:\n  host: 0.0.0.0\n  port: {port}\n"
    )


@dataclass
class Fleet:
    lab: Lab
    project: Path
    hosts: dict[str, Host]
    mirror: Path

    @property
    def inventory(self) -> str:
        return "inventories/lab.yml"

    def apply(self, *args: str) -> subprocess.CompletedProcess[str]:
        return stackctl("apply", "-i", self.inventory, "--mirror", str(self.mirror), "--json",
                        *args, cwd=self.project)  # fmt: skip

    def exists(self, host: str, path: str) -> bool:
        return self.lab.exec(host, "test", "-e", path)[0] == 0


def _inventory(lab: Lab, hosts: dict[str, Host]) -> dict[str, Any]:
    gpu_vars = {"stackctl_host_layer": False, "stackctl_install_build_deps": False}
    declared = {
        "strix": {"system": "Strix Halo 128GB"},
        "gpu8": {"gpu": "RTX 3060 Ti", "cpu": "Ryzen 9 7950X", "ram": 64},
    }
    return {
        "all": {
            "vars": {**lab.inventory_vars(), "stackctl_stack": f"../{STACK}.yaml"},
            "children": {
                "gpu": {
                    "vars": gpu_vars,
                    "hosts": {
                        n: {"ansible_host": hosts[n].address, "stackctl_hardware": declared[n]}
                        for n in GPU_HOSTS
                    },
                },
                "cpu": {
                    "vars": {
                        "stackctl_hardware": "../cpu-box.yaml",
                        "stackctl_health_timeout": 120,
                    },
                    "hosts": {n: {"ansible_host": hosts[n].address} for n in CPU_HOSTS},
                },
                "broken": {
                    "vars": {"stackctl_hardware": "../cpu-box.yaml"},
                    "hosts": {
                        "ghost": {"ansible_host": lab.spare_address()},
                        "nopython": {"ansible_host": hosts["nopython"].address},
                    },
                },
            },
        }
    }


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    mirror = fill_mirror(DEFAULT_MIRROR)
    project = tmp_path_factory.mktemp("fleet")
    write_stack(project, 2048)
    # the containers share this machine's CPU: its own profile is their declared one (with its
    # CPU flags, so quirks such as x86-amx-no-repack apply as they would on the box itself)
    detected = stackctl("detect", "-o", str(project / "cpu-box.yaml"), cwd=project)
    assert detected.returncode == 0, detected.stderr
    inputs = load_stack_inputs(
        str(project / f"{STACK}.yaml"), load_profile(project / "cpu-box.yaml")
    )
    build = BUILD_CACHE / f"llama.cpp-{make_lock(inputs).resolved.engine.build_key}"
    if not (build / "out" / "build.ok").is_file():
        pytest.skip(f"no cached CPU build at {build}: run the e2e apply test first")
    seed = {str(build): {"bind": str(build), "mode": "ro"}}
    try:
        lab = Lab(project)
        remove_leftovers(lab.client)
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker Engine: {exc}")
    try:
        specs = [HostSpec(n) for n in [*GPU_HOSTS, "nopython"]]
        hosts = lab.start(specs + [HostSpec(n, mounts=seed) for n in CPU_HOSTS])
        lab.exec("nopython", "sh", "-c", "rm -f /usr/bin/python3*")
        (project / "inventories").mkdir()
        with (project / "inventories" / "lab.yml").open("w") as handle:
            YAML().dump(_inventory(lab, hosts), handle)
        yield Fleet(lab, project, hosts, mirror)
    finally:
        lab.close()


def test_plan_resolves_each_host_and_identical_hosts_once(fleet: Fleet) -> None:
    done = stackctl("fleet", "plan", "-i", fleet.inventory, "--json", cwd=fleet.project)
    assert done.returncode == 0, done.stderr
    hosts = by_host(as_json(done))
    assert set(hosts) == {*GPU_HOSTS, *CPU_HOSTS, *BROKEN_HOSTS}
    assert all(h["error"] is None for h in hosts.values())
    assert all(h["stack"] == STACK for h in hosts.values())
    backends = {name: h["chosen"]["backend"] for name, h in hosts.items()}
    assert backends["gpu8"] == "cuda"
    assert backends["strix"] in ("rocm", "vulkan")
    assert backends["cpu-a"] == backends["cpu-b"] == "cpu"
    assert all(h["chosen"]["model"] == "gemma-3-270m" for h in hosts.values())
    assert hosts["cpu-a"]["content_hash"] == hosts["cpu-b"]["content_hash"]
    assert hosts["cpu-a"]["content_hash"] != hosts["gpu8"]["content_hash"]


def test_lock_writes_one_lock_per_host(fleet: Fleet) -> None:
    done = stackctl("fleet", "lock", "-i", fleet.inventory, "--json", cwd=fleet.project)
    assert done.returncode == 0, done.stderr
    yaml = YAML(typ="safe")
    locks = {
        n: fleet.project / "lockfiles" / f"{STACK}.{n}.lock.yaml" for n in by_host(as_json(done))
    }
    assert all(path.is_file() for path in locks.values())
    a, b = (yaml.load(locks[n].read_text()) for n in CPU_HOSTS)
    assert a["resolved"] == b["resolved"]
    assert a["content_hash"] == b["content_hash"]
    assert yaml.load(locks["gpu8"].read_text())["resolved"]["engine"]["backend"] == "cuda"


def test_remote_detection_parses_each_hosts_bundle(fleet: Fleet) -> None:
    done = stackctl("fleet", "detect", "-i", fleet.inventory, "--json", cwd=fleet.project)
    assert done.returncode == 1  # the broken hosts
    hosts = by_host(as_json(done))
    assert all(hosts[name]["error"] for name in BROKEN_HOSTS)
    yaml = YAML(typ="safe")
    local = yaml.load(stackctl("detect", "--json", cwd=fleet.project).stdout)
    for name in (*GPU_HOSTS, *CPU_HOSTS):
        assert hosts[name]["profile"] == name
        profile = yaml.load((fleet.project / hosts[name]["path"]).read_text())
        assert (fleet.project / "profiles" / name / "cmd" / "lscpu.txt").is_file()
        # the containers share the controller's CPU: the bundle parses to the same CPU
        assert profile["cpu"]["model"] == local["cpu"]["model"]
        assert profile["cpu"]["flags"] == local["cpu"]["flags"]
        assert profile["accelerators"] == []


def test_check_run_covers_every_host_and_installs_nothing_on_gpu_hosts(fleet: Fleet) -> None:
    done = fleet.apply("--check")
    assert done.returncode == 1, done.stderr
    data = as_json(done)
    hosts = by_host(data)
    assert {hosts[n]["status"] for n in (*GPU_HOSTS, *CPU_HOSTS)} <= {"ok", "changed"}
    assert hosts["ghost"]["status"] == "unreachable", hosts["ghost"]
    assert hosts["nopython"]["status"] == "failed", hosts["nopython"]
    assert "python" in hosts["nopython"]["message"].lower()
    assert data["rerun"].endswith("--limit ghost,nopython --check")
    run = fleet.project / "build" / "fleet" / "lab"
    yaml = YAML(typ="safe")
    for name in GPU_HOSTS:
        vars_ = yaml.load((run / "host_vars" / name / "stackctl.yml").read_text())
        assert any(r.startswith("stackctl_host_") for r in vars_["stackctl_roles"])
        assert vars_["stackctl_engine"]["backend"] in ("cuda", "rocm", "vulkan")
        assert (run / "hosts" / name / "files" / f"{SERVICE}.service").is_file()
        assert not fleet.exists(name, "/opt/stackctl")  # check mode: nothing installed
        assert not fleet.exists(name, "/var/lib/stackctl/models")


def _disconnect_when(fleet: Fleet, host: str, path: str, stop: threading.Event) -> None:
    while not stop.is_set():
        if fleet.exists(host, path):
            fleet.lab.disconnect(host)
            return
        time.sleep(0.2)


def test_apply_survives_a_host_dropping_off_and_a_rerun_completes_it(fleet: Fleet) -> None:
    stop = threading.Event()
    watcher = threading.Thread(
        target=_disconnect_when, args=(fleet, "cpu-b", "/opt/stackctl/engines", stop)
    )
    watcher.start()
    try:
        done = fleet.apply("--limit", "cpu", "--forks", "4")
    finally:
        stop.set()
        watcher.join()
    hosts = by_host(as_json(done))
    assert done.returncode == 1
    assert hosts["cpu-a"]["status"] == "changed", hosts
    assert hosts["cpu-b"]["status"] == "unreachable", hosts
    assert as_json(done)["rerun"].endswith("--limit cpu-b")
    assert complete(fleet, "cpu-a").startswith(" 6")

    fleet.lab.reconnect("cpu-b")
    again = fleet.apply("--limit", "cpu-b")
    assert again.returncode == 0, again.stderr
    assert by_host(as_json(again))["cpu-b"]["status"] == "changed"
    assert complete(fleet, "cpu-b").startswith(" 6")


def test_each_host_got_its_own_unit_config_and_model(fleet: Fleet) -> None:
    run = fleet.project / "build" / "fleet" / "lab"
    for name in CPU_HOSTS:
        rendered = run / "hosts" / name / "files"
        for local, remote in (
            (rendered / f"{SERVICE}.service", f"/etc/systemd/system/{SERVICE}.service"),
            (rendered / f"{SERVICE}.argv.json", f"/etc/stackctl/{SERVICE}.argv.json"),
        ):
            code, text = fleet.lab.exec(name, "cat", remote)
            assert code == 0, text
            assert text == local.read_text()
        vars_ = YAML(typ="safe").load((run / "host_vars" / name / "stackctl.yml").read_text())
        code, out = fleet.lab.exec(name, "sha256sum", vars_["stackctl_model"]["path"])
        assert code == 0, out
        assert out.startswith(GEMMA_SHA256), out


def test_servers_demand_the_key_the_controller_keeps(fleet: Fleet) -> None:
    for name in CPU_HOSTS:
        path = key_file(fleet.project, name)
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.parent.stat().st_mode & 0o777 == 0o700
        assert len(path.read_text().strip()) >= 32
        body = json.dumps({"prompt": "1,", "max_tokens": 1}).encode()
        anonymous = urllib.request.Request(
            f"http://{fleet.hosts[name].address}:8080/v1/completions", data=body,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(anonymous, timeout=60)
        assert refused.value.code == 401
    # the two hosts generated their own keys
    assert (
        key_file(fleet.project, "cpu-a").read_text() != key_file(fleet.project, "cpu-b").read_text()
    )
    # a check run brings back no keys: the GPU hosts have none here
    assert not key_file(fleet.project, "strix").exists()


def test_rerun_converges(fleet: Fleet) -> None:
    done = fleet.apply("--limit", "cpu")
    assert done.returncode == 0, done.stderr
    assert {h["host"]: h["changed"] for h in as_json(done)["hosts"]} == {"cpu-a": 0, "cpu-b": 0}


def test_status_from_the_controller(fleet: Fleet) -> None:
    done = stackctl("fleet", "status", "-i", fleet.inventory, "--json", cwd=fleet.project)
    assert done.returncode == 0, done.stderr
    hosts = by_host(as_json(done))
    for name in CPU_HOSTS:
        assert hosts[name]["up"] is True
        assert hosts[name]["endpoint"] == f"http://{fleet.hosts[name].address}:8080"
        assert hosts[name]["measured_tg_tps"] > 0
        assert hosts[name]["predicted_tg_tps"] > 0
        assert hosts[name]["api_key_file"].endswith(f"lab.keys/{name}.api-key")
    assert all(hosts[name]["up"] is False for name in GPU_HOSTS)


def test_bench_measures_every_reachable_host_from_the_controller(fleet: Fleet) -> None:
    done = stackctl("bench", "-i", fleet.inventory, "--depths", "0", "--clients", "1,2",
                    "--runs", "1", "--n-gen", "16", "--json", cwd=fleet.project)  # fmt: skip
    assert done.returncode == 1, done.stderr  # the hosts without a server are reported
    hosts = by_host(as_json(done))
    for name in CPU_HOSTS:
        report = hosts[name]["report"]
        assert hosts[name]["error"] is None
        assert report["endpoint"] == f"http://{fleet.hosts[name].address}:8080"
        assert [(p["depth"], p["clients"]) for p in report["results"]] == [(0, 1), (0, 2)]
        single, double = report["results"]
        assert single["tg_tps"] > 0
        assert double["tg_tps"] > 0
        assert single["predicted"]["tg_tps"] > 0
    for name in (*GPU_HOSTS, *BROKEN_HOSTS):
        assert hosts[name]["report"] is None
        assert hosts[name]["error"], hosts[name]


def test_rolling_upgrade_one_host_per_batch_behind_a_health_gate(fleet: Fleet) -> None:
    write_stack(fleet.project, 4096)
    relocked = stackctl("fleet", "lock", "-i", fleet.inventory, cwd=fleet.project)
    assert relocked.returncode == 0, relocked.stderr
    done = fleet.apply("--limit", "cpu", "--serial", "1")
    assert done.returncode == 0, done.stderr
    hosts = by_host(as_json(done))
    first, second = sorted(CPU_HOSTS, key=lambda n: hosts[n]["first_event"])
    assert hosts[first]["status"] == hosts[second]["status"] == "changed"
    # the second batch starts only after the first batch's gate passed
    assert hosts[first]["gate_passed"] < hosts[second]["first_event"]
    for name in CPU_HOSTS:
        argv = json.loads(fleet.lab.exec(name, "cat", f"/etc/stackctl/{SERVICE}.argv.json")[1])
        assert argv[argv.index("--ctx-size") + 1] == "4096"
        assert n_ctx(fleet, name) == 4096


def test_a_failed_health_gate_stops_the_rollout(fleet: Fleet) -> None:
    # sshd holds port 22: the upgraded server cannot listen there, so the first batch's
    # health check fails and the second batch is never touched
    write_stack(fleet.project, 4096, port=22)
    relocked = stackctl("fleet", "lock", "-i", fleet.inventory, cwd=fleet.project)
    assert relocked.returncode == 0, relocked.stderr
    done = fleet.apply("--limit", "cpu", "--serial", "1")
    assert done.returncode == 1
    hosts = by_host(as_json(done))
    assert hosts["cpu-a"]["status"] == "failed", hosts
    assert hosts["cpu-b"]["status"] == "not-run", hosts
    assert complete(fleet, "cpu-b").startswith(" 6")  # still the old version
