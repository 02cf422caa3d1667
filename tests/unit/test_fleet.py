"""Fleet planning without hosts: the shipped lab inventory through Ansible's own parser, per-host
errors, identical hosts resolving once, and the rendered run folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from stackctl.fleet.deploy import FleetOptions, rerun_command
from stackctl.fleet.inventory import InventoryError, limit_hosts, read_inventory
from stackctl.fleet.plan import plan_fleet
from stackctl.fleet.run import render_fleet

LAB = Path(__file__).resolve().parents[2] / "inventories"


def stackctl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackctl", *args],
        cwd=cwd, text=True, capture_output=True, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_and_ini_labs_parse_to_the_same_hosts() -> None:
    yml, ini = read_inventory(LAB / "lab.yml"), read_inventory(LAB / "lab.ini")
    assert [h.model_dump(exclude={"hardware"}) for h in yml.hosts] == [
        h.model_dump(exclude={"hardware"}) for h in ini.hosts
    ]
    assert {h.name: h.hardware for h in yml.hosts} == {h.name: h.hardware for h in ini.hosts}
    assert {h.name: h.stack for h in yml.hosts}["cpu1"] == "tiny-cpu"  # group var beats all


def test_fleet_plan_json_has_a_chosen_plan_per_host(in_tmp: Path) -> None:
    done = stackctl("fleet", "plan", "-i", str(LAB / "lab.yml"), "--json", cwd=in_tmp)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["schema_version"] == 1
    hosts = {h["host"]: h for h in data["hosts"]}
    assert set(hosts) == {"strix", "rig3090", "studio", "cpu1", "cpu2"}
    assert all(h["error"] is None for h in hosts.values())
    assert hosts["rig3090"]["chosen"]["backend"] == "cuda"
    assert hosts["studio"]["chosen"]["backend"] == "metal"
    assert hosts["cpu1"]["chosen"] == hosts["cpu2"]["chosen"]
    assert hosts["cpu1"]["content_hash"] == hosts["cpu2"]["content_hash"]
    assert hosts["cpu1"]["chosen"]["predicted"]["tg_tps"] > 0


BAD = """\
all:
  vars: {stackctl_hardware: {cpu: Ryzen 9 7950X, ram: 64}, stackctl_stack: tiny-cpu}
  hosts:
    a: {ansible_host: 10.0.0.1}
    b: {ansible_host: 10.0.0.1}
    typo: {ansible_host: 10.0.0.3, stackctl_stack: tiny-cpuu}
    nogpu: {ansible_host: 10.0.0.4, stackctl_hardware: {gpu: RTX 9999}}
    badkey: {ansible_host: 10.0.0.6, stackctl_hardware: {vram: 8}}
    undetected: {ansible_host: 10.0.0.7, stackctl_hardware: null}
    good: {ansible_host: 10.0.0.5}
"""


def test_bad_hosts_get_their_own_error_and_the_rest_plan(in_tmp: Path) -> None:
    inventory = write(in_tmp / "bad.yml", BAD)
    planned = {p.host.name: p for p in plan_fleet(read_inventory(inventory))}
    errors = {name: p.error or "" for name, p in planned.items()}
    assert "same address 10.0.0.1:22 as b" in errors["a"]
    assert "same address 10.0.0.1:22 as a" in errors["b"]
    assert "tiny-cpuu.yaml: no such stack file" in errors["typo"]
    assert "shipped stacks:" in errors["typo"]
    assert "unknown GPU 'RTX 9999'" in errors["nogpu"]
    assert "unknown key(s) vram" in errors["badkey"]
    assert "fleet detect" in errors["undetected"]
    assert planned["good"].lock is not None
    assert planned["good"].error is None
    done = stackctl("fleet", "plan", "-i", str(inventory), cwd=in_tmp)
    assert done.returncode == 1
    assert "tiny-cpuu" in done.stdout
    assert "ok" in done.stdout


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("broken.yml", "all:\n  hosts:\n    a: {ansible_host: 1\n  b: [\n", "broken.yml:4"),
        ("broken.ini", "[web\nhost1 ansible_host=1.2.3.4\n", None),
    ],
)
def test_an_inventory_that_does_not_parse_is_refused(
    in_tmp: Path, name: str, text: str, where: str | None
) -> None:
    with pytest.raises(InventoryError) as caught:
        read_inventory(write(in_tmp / name, text))
    assert "Ansible cannot parse this inventory" in caught.value.message
    assert where is None or where in str(caught.value.source)
    done = stackctl("fleet", "lock", "-i", name, cwd=in_tmp)
    assert done.returncode == 2
    assert name in done.stderr
    assert not (in_tmp / "lockfiles").exists()  # nothing half-written


def _yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def test_run_folder_has_one_playbook_and_per_host_vars_and_files(in_tmp: Path) -> None:
    inventory = LAB / "lab.yml"
    planned = plan_fleet(read_inventory(inventory))
    out, errors = render_fleet(planned, in_tmp / "run", inventory=inventory, mirror=None, serial=2)
    assert errors == {}
    playbook = _yaml(out / "playbook.yml")
    assert len(playbook) == 1
    assert playbook[0]["serial"] == 2
    assert playbook[0]["max_fail_percentage"] == 0
    tasks = playbook[0]["tasks"]
    names = [t["name"] for t in tasks]
    # the gate follows the roles; only the API key's trip to the controller comes after it,
    # and that never logs the key
    assert names.index("Health gate") == names.index("Run the roles this host's lock chose") + 1
    after = tasks[names.index("Health gate") + 1 :]
    assert [t["name"] for t in after] == [
        "Read this host's API key",
        "Keep the API key on the controller",
    ]
    assert all(t["no_log"] is True for t in after)
    assert after[1]["delegate_to"] == "localhost"
    assert after[1]["ansible.builtin.copy"]["mode"] == "0600"
    studio = _yaml(out / "host_vars" / "studio" / "stackctl.yml")
    rig = _yaml(out / "host_vars" / "rig3090" / "stackctl.yml")
    assert "stackctl_host_apple" in studio["stackctl_roles"]
    assert "stackctl_host_nvidia" in rig["stackctl_roles"]
    assert rig["stackctl_files_dir"] == "{{ playbook_dir }}/hosts/rig3090/files"
    assert (out / "hosts" / "rig3090" / "files" / "stackctl-default.service").is_file()
    assert (out / "roles" / "stackctl_service" / "tasks" / "main.yml").is_file()
    again, _ = render_fleet(planned, in_tmp / "run2", inventory=inventory, mirror=None, serial=2)
    assert (again / "host_vars" / "cpu1" / "stackctl.yml").read_bytes() == (
        out / "host_vars" / "cpu1" / "stackctl.yml"
    ).read_bytes()


def test_rerun_command_names_the_failed_hosts() -> None:
    options = FleetOptions(inventory=Path("inventories/lab.yml"), check=True)
    assert rerun_command(options, ["cpu2", "strix"]) == (
        "stackctl apply -i inventories/lab.yml --limit cpu2,strix --check"
    )


def test_limit_takes_ansible_patterns() -> None:
    assert limit_hosts(LAB / "lab.yml", "cpu,strix") == {"cpu1", "cpu2", "strix"}
    with pytest.raises(InventoryError, match="matches no host"):
        limit_hosts(LAB / "lab.yml", "nothere")


def test_fleet_and_detect_playbooks_pass_ansible_lint(in_tmp: Path) -> None:
    from stackctl.fleet.detect import render_detect_run

    inventory = LAB / "lab.yml"
    run, _ = render_fleet(
        plan_fleet(read_inventory(inventory)), in_tmp / "run", inventory=inventory, mirror=None,
        serial=1,
    )  # fmt: skip
    detect = render_detect_run(in_tmp / "detect", inventory)
    lint = Path(sys.executable).parent / "ansible-lint"
    config = Path(__file__).resolve().parents[1] / "data" / "render" / "cpu-x86" / ".ansible-lint"
    for folder, playbook in ((run, "playbook.yml"), (detect, "detect.yml")):
        done = subprocess.run(
            [str(lint), "-c", str(config), "--offline", "--profile", "production", playbook],
            cwd=folder, text=True, capture_output=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_lock_then_status_per_host(in_tmp: Path) -> None:
    inventory = str(LAB / "lab.yml")
    locked = stackctl("fleet", "lock", "-i", inventory, "--json", cwd=in_tmp)
    assert locked.returncode == 0, locked.stderr
    paths = {h["host"]: h["lock_path"] for h in json.loads(locked.stdout)["hosts"]}
    assert paths["cpu1"] == "lockfiles/tiny-cpu.cpu1.lock.yaml"
    assert paths["strix"] == "lockfiles/default.strix.lock.yaml"
    assert (in_tmp / paths["cpu1"]).read_text().split("resolved:", 1)[1] == (
        in_tmp / paths["cpu2"]
    ).read_text().split("resolved:", 1)[1]
    done = stackctl("fleet", "status", "-i", inventory, "--json", cwd=in_tmp)
    assert done.returncode == 0, done.stderr
    hosts = {h["host"]: h for h in json.loads(done.stdout)["hosts"]}
    # the shipped stacks listen on loopback: the controller cannot tell, and says so
    assert hosts["cpu1"]["up"] is None
    assert "loopback" in hosts["cpu1"]["note"]
    assert hosts["cpu1"]["predicted_tg_tps"] > 0


def test_remote_probe_script_gives_a_bundle_that_detect_from_reads(in_tmp: Path) -> None:
    """The role's probe script run here: its bundle parses to this machine's own profile."""
    import tarfile

    from stackctl.detect import BundleRunner, LiveRunner, detect_hardware
    from stackctl.fleet.detect import probe_spec
    from stackctl.resources import roles_dir

    spec = write(in_tmp / "probes.json", json.dumps(probe_spec()))
    script = roles_dir() / "stackctl_detect" / "files" / "stackctl-probe"
    done = subprocess.run(
        [sys.executable, str(script), str(spec), str(in_tmp / "bundle.tar.gz")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with tarfile.open(in_tmp / "bundle.tar.gz") as tar:
        tar.extractall(in_tmp, filter="data")
    assert (in_tmp / "bundle" / "cmd" / "lscpu.txt").is_file()
    assert (in_tmp / "bundle" / "fs" / "proc" / "cpuinfo").is_file()
    remote, local = detect_hardware(BundleRunner(in_tmp / "bundle")), detect_hardware(LiveRunner())
    assert remote.cpu == local.cpu
    assert remote.memory.total_bytes == local.memory.total_bytes
    assert [a.name for a in remote.accelerators] == [a.name for a in local.accelerators]
