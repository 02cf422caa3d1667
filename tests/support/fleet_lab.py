"""Host containers for fleet tests and benchmarks: sshd + Python from the debootstrap base, on a
private Docker network with its own subnet, started and removed through the docker SDK.

Every container and network carries the LABEL, so `Lab.close` (and a later run, for leftovers
of a killed one) removes all of them.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import random
import socket
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from docker.models.containers import Container
from docker.models.networks import Network
from docker.types import IPAMConfig, IPAMPool

from tests.support.fleet_base import ensure_base_image

LABEL = "org.stackctl.fleet-test"
SSH_OPTIONS = (
    "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 "
    "-o ServerAliveInterval=2 -o ServerAliveCountMax=3"
)


@dataclass
class HostSpec:
    name: str
    mounts: dict[str, dict[str, str]] = field(default_factory=dict)  # docker SDK `volumes`


@dataclass
class Host:
    name: str
    container: Container
    address: str


def remove_leftovers(client: docker.DockerClient) -> None:
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        container.remove(force=True)
    for network in client.networks.list(filters={"label": LABEL}):
        network.remove()


def _free_subnet(client: docker.DockerClient) -> ipaddress.IPv4Network:
    used = []
    for net in client.networks.list():
        for pool in (net.attrs.get("IPAM") or {}).get("Config") or []:
            if "Subnet" in pool and ":" not in pool["Subnet"]:
                used.append(ipaddress.IPv4Network(pool["Subnet"]))
    for _ in range(50):
        candidate = ipaddress.IPv4Network(
            f"10.{random.randint(100, 250)}.{random.randint(0, 255)}.0/24"
        )
        if not any(candidate.overlaps(u) for u in used):
            return candidate
    raise RuntimeError("no free /24 for the fleet network")


def _authorized_keys(public_key: str) -> bytes:
    data = public_key.encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        folder = tarfile.TarInfo(".ssh")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o700
        tar.addfile(folder)
        info = tarfile.TarInfo(".ssh/authorized_keys")
        info.size, info.mode = len(data), 0o600
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _wait_for_ssh(address: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, 22), timeout=2) as conn:
                if conn.recv(4).startswith(b"SSH"):
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"sshd on {address} did not answer within {timeout:.0f}s")


class Lab:
    """Containers on one private network; a context manager that always cleans up."""

    def __init__(self, workdir: Path, prefix: str = "stackctl-fleet") -> None:
        self.client = docker.from_env()
        self.workdir = workdir
        self.prefix = f"{prefix}-{random.randint(0, 1 << 24):06x}"
        self.hosts: dict[str, Host] = {}
        self.network: Network | None = None
        self.key = workdir / "id_ed25519"

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def start(self, specs: list[HostSpec]) -> dict[str, Host]:
        image = ensure_base_image(self.client)
        if not self.key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)],
                           check=True)  # fmt: skip
        public = self.key.with_suffix(".pub").read_text()
        subnet = _free_subnet(self.client)
        self.network = self.client.networks.create(
            self.prefix,
            driver="bridge",
            internal=True,  # hosts reach nothing but each other and the controller
            labels={LABEL: "1"},
            ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet))]),
        )
        for spec in specs:
            container = self.client.containers.run(
                image,
                detach=True,
                name=f"{self.prefix}-{spec.name}",
                hostname=spec.name,
                labels={LABEL: "1"},
                network=self.network.name,
                volumes=spec.mounts,
            )
            container.put_archive("/root", _authorized_keys(public))
            container.reload()
            address = container.attrs["NetworkSettings"]["Networks"][self.network.name]["IPAddress"]
            self.hosts[spec.name] = Host(spec.name, container, address)
        for host in self.hosts.values():
            _wait_for_ssh(host.address)
        return self.hosts

    def spare_address(self) -> str:
        """An address on the network that no container has: an unreachable host."""
        assert self.network is not None
        self.network.reload()
        subnet = ipaddress.IPv4Network(self.network.attrs["IPAM"]["Config"][0]["Subnet"])
        return str(subnet.network_address + 250)

    def disconnect(self, name: str) -> None:
        assert self.network is not None
        self.network.disconnect(self.hosts[name].container, force=True)

    def reconnect(self, name: str) -> None:
        assert self.network is not None
        host = self.hosts[name]
        self.network.connect(host.container, ipv4_address=host.address)

    def exec(self, name: str, *argv: str) -> tuple[int, str]:
        code, out = self.hosts[name].container.exec_run(list(argv))
        return int(code), out.decode(errors="replace")

    def inventory_vars(self) -> dict[str, Any]:
        return {
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.key),
            "ansible_ssh_common_args": SSH_OPTIONS,
            "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_timeout": 10,
        }

    def close(self) -> None:
        for host in self.hosts.values():
            with contextlib.suppress(docker.errors.NotFound):
                host.container.remove(force=True)
        self.hosts.clear()
        if self.network is not None:
            with contextlib.suppress(docker.errors.NotFound):
                self.network.remove()
            self.network = None
