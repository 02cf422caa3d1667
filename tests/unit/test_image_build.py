"""Appliance images from a lock, built for real: twice from clean storage with equal digests
(`image verify`), served over HTTP from `docker run`, exported as OCI, and through buildah.

No registry here: the base is a debootstrapped bookworm imported into each engine and passed by
its digest with --base. Slow the first time (debootstrap, the toolchain, two engine compiles per
engine); base and toolchain images stay cached between runs, as `image verify` keeps them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import image_prep
from tests.support.base_image import buildah_base, docker_base
from tests.support.mirror_fill import DEFAULT_MIRROR, GEMMA_FILE, fill_mirror
from tests.support.render_cases import BY_NAME

pytestmark = [
    pytest.mark.image,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("debootstrap") is None,
        reason="needs root and debootstrap (scripts/bootstrap.sh installs it)",
    ),
]

LOCK = BY_NAME["cpu-x86"].lock_path
BUILD_TIMEOUT = 60 * 60


def stackctl(*args: str | Path, env: dict[str, str] | None = None,
             timeout: float = BUILD_TIMEOUT) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "stackctl", *map(str, args)], capture_output=True, text=True,
        timeout=timeout, stdin=subprocess.DEVNULL, check=False, env=env,
    )  # fmt: skip


def json_of(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr[-6000:]
    data: dict[str, Any] = json.loads(done.stdout)
    return data


@pytest.fixture(scope="module")
def base() -> str:
    image_prep.wait()  # base and toolchain images, started at collection (tests/conftest.py)
    fill_mirror(DEFAULT_MIRROR)
    return docker_base()


@pytest.fixture(scope="module")
def verified(base: str) -> dict[str, Any]:
    return json_of(stackctl("image", "verify", LOCK, "--engine", "docker", "--base", base,
                            "--mirror", DEFAULT_MIRROR, "--json"))  # fmt: skip


def test_two_builds_from_clean_storage_have_equal_digests(verified: dict[str, Any]) -> None:
    assert verified["equal"] is True, verified["differences"]
    assert verified["first"] == verified["second"]
    assert verified["first"].startswith("sha256:")


def _get(
    url: str, key: str | None = None, body: dict[str, Any] | None = None, timeout: float = 60
) -> Any:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=timeout) as r:
        return json.loads(r.read())


@pytest.fixture
def api_key(tmp_path: Path) -> tuple[str, Path]:
    key = secrets.token_hex(16)
    path = tmp_path / "api-key"
    path.write_text(key + "\n")
    path.chmod(0o644)  # read by the image's unprivileged user
    return key, path


@contextlib.contextmanager
def _serve(tag: str, key_file: Path, volume: Path | None) -> Iterator[tuple[Any, str]]:
    import docker

    client = docker.from_env()
    volumes = {str(key_file): {"bind": "/run/secrets/stackctl-api-key", "mode": "ro"}}
    if volume is not None:
        volumes[str(volume)] = {"bind": "/models", "mode": "ro"}
    container = client.containers.run(
        tag, detach=True, ports={"8080/tcp": ("127.0.0.1", None)}, volumes=volumes
    )
    try:
        container.reload()
        port = container.attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        yield container, f"http://127.0.0.1:{port}"
    finally:
        container.remove(force=True)


def _wait_healthy(url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _get(f"{url}/health").get("status") == "ok":
                return
        except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
            pass
        time.sleep(1)
    raise AssertionError(f"{url}/health never became ok")


def _check_serving(container: Any, url: str, key: str) -> None:
    _wait_healthy(url)
    body = {"prompt": "1, 2, 3, 4, 5,", "max_tokens": 4, "temperature": 0}
    with pytest.raises(urllib.error.HTTPError) as refused:
        _get(f"{url}/v1/completions", None, body)
    assert refused.value.code == 401
    answer = _get(f"{url}/v1/completions", key, body)
    assert answer["choices"][0]["text"].startswith(" 6")
    container.stop(timeout=30)
    container.reload()
    assert container.attrs["State"]["ExitCode"] in (0, 143), container.attrs["State"]


def test_the_image_serves_with_the_model_baked_in(
    verified: dict[str, Any], api_key: tuple[str, Path]
) -> None:
    import docker

    tag = docker.from_env().images.get(verified["second"]).tags[0]
    labels = docker.from_env().images.get(tag).labels
    assert labels["io.stackctl.lock-hash"].startswith("sha256:")
    assert labels["io.stackctl.host-needs"]
    key, key_file = api_key
    with _serve(tag, key_file, None) as (container, url):
        _check_serving(container, url, key)


def test_the_image_serves_a_model_volume(base: str, api_key: tuple[str, Path]) -> None:
    built = json_of(stackctl("image", "build", LOCK, "--engine", "docker", "--base", base,
                             "--mirror", DEFAULT_MIRROR, "--model-volume", "--json"))  # fmt: skip
    import docker

    layers = docker.from_env().images.get(built["tag"]).attrs["RootFS"]["Layers"]
    assert built["tag"].endswith("-server")
    key, key_file = api_key
    models = DEFAULT_MIRROR
    assert (models / GEMMA_FILE).is_file()
    with _serve(built["tag"], key_file, models) as (container, url):
        _check_serving(container, url, key)
    assert len(layers) >= 3


def test_export_is_an_oci_layout_and_byte_stable(
    verified: dict[str, Any], base: str, tmp_path: Path
) -> None:
    digests = []
    for name in ("a.oci.tar", "b.oci.tar"):
        out = tmp_path / name
        done = json_of(stackctl("image", "export", LOCK, "--engine", "docker", "--base", base,
                                "--mirror", DEFAULT_MIRROR, "-o", out, "--json"))  # fmt: skip
        digests.append(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
        assert done["manifest_digest"].startswith("sha256:")
    assert digests[0] == digests[1]
    with tarfile.open(tmp_path / "a.oci.tar") as layout:
        index = json.load(layout.extractfile("index.json"))  # type: ignore[arg-type]
        manifest_name = "blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]
        manifest = json.load(layout.extractfile(manifest_name))  # type: ignore[arg-type]
    assert manifest["config"]["digest"] == verified["second"]


def test_buildah_rebuilds_are_stable(tmp_path: Path) -> None:
    from stackctl.image.engines import BuildahEngine

    if shutil.which("buildah") is None:
        pytest.skip("buildah is not installed")
    image_prep.wait()
    buildah_id = buildah_base(BuildahEngine())
    done = json_of(stackctl("image", "verify", LOCK, "--engine", "buildah", "--base", buildah_id,
                            "--mirror", DEFAULT_MIRROR, "--json"))  # fmt: skip
    assert done["equal"] is True, done["differences"]


def test_no_engine_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/none.sock", "PATH": str(tmp_path)}
    done = stackctl("image", "build", LOCK, "--mirror", DEFAULT_MIRROR, env=env, timeout=120)
    assert done.returncode != 0
    assert "no container engine available" in done.stderr
    assert "docker:" in done.stderr
    assert "buildah:" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_missing_base_is_a_clear_error() -> None:
    done = stackctl("image", "build", LOCK, "--engine", "docker", "--mirror", DEFAULT_MIRROR,
                    "--base", "sha256:" + "0" * 64, timeout=300)  # fmt: skip
    assert done.returncode != 0
    assert "not in docker's local storage" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_failed_build_leaves_no_tag(base: str, tmp_path: Path) -> None:
    import docker

    from stackctl.lock import read_lockfile, write_lockfile

    lock = read_lockfile(LOCK)
    source = lock.resolved.engine.source.model_copy(update={"sha256": "0" * 64})
    engine = lock.resolved.engine.model_copy(update={"source": source})
    broken = lock.model_copy(
        update={"resolved": lock.resolved.model_copy(update={"engine": engine})}
    )
    path = tmp_path / "broken.lock.yaml"
    write_lockfile(broken, path)
    tag = "localhost/stackctl-broken:test"
    done = stackctl("image", "build", path, "--engine", "docker", "--base", base, "--tag", tag,
                    "--mirror", DEFAULT_MIRROR)  # fmt: skip
    assert done.returncode != 0
    client = docker.from_env()
    tags = [t for image in client.images.list() for t in image.tags]
    assert tag not in tags
    assert not [t for t in tags if t.startswith("localhost/stackctl-raw")]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _boot(disk: Path, port: int, console: Path, accel: str) -> subprocess.Popen[bytes]:
    # TCG's -cpu max emulates AVX2, enough for the image's x86-64-v3 engine (not AVX-512).
    cpu = "host" if accel == "kvm" else "max"
    return subprocess.Popen(
        ["qemu-system-x86_64", "-accel", accel, "-cpu", cpu, "-m", "2048", "-smp", "2",
         "-display", "none", "-monitor", "none", "-serial", f"file:{console}",
         "-drive", f"file={disk},format=raw,if=virtio",
         "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:8080",
         "-device", "virtio-net-pci,netdev=n0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def _boot_kvm_else_tcg(disk: Path, port: int, console: Path) -> subprocess.Popen[bytes]:
    """KVM where it runs guests; nested KVM here stops at the BIOS ("KVM internal error")."""
    if Path("/dev/kvm").exists():
        qemu = _boot(disk, port, console, "kvm")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and qemu.poll() is None:
            if console.exists() and console.stat().st_size:
                return qemu  # the guest prints: KVM runs it
            time.sleep(1)
        qemu.kill()
        qemu.wait()
    return _boot(disk, port, console, "tcg")


@pytest.mark.skipif(
    shutil.which("qemu-system-x86_64") is None or shutil.which("extlinux") is None,
    reason="needs qemu-system-x86 and extlinux (scripts/bootstrap.sh installs them)",
)
def test_the_disk_boots_and_serves(
    verified: dict[str, Any], base: str, api_key: tuple[str, Path], tmp_path: Path
) -> None:
    key, key_file = api_key
    disk = tmp_path / "appliance.raw"
    json_of(stackctl("image", "disk", LOCK, "--base", base, "--mirror", DEFAULT_MIRROR,
                     "-o", disk, "--api-key-file", key_file, "--json"))  # fmt: skip
    port = _free_port()
    console = tmp_path / "console.log"
    qemu = _boot_kvm_else_tcg(disk, port, console)
    try:
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, timeout=600)
        except AssertionError:
            raise AssertionError(console.read_text(errors="replace")[-4000:]) from None
        body = {"prompt": "1, 2, 3, 4, 5,", "max_tokens": 4, "temperature": 0}
        answer = _get(f"{url}/v1/completions", key, body, timeout=600)
        assert answer["choices"][0]["text"].startswith(" 6")
        booted = console.read_text(errors="replace")
        assert "Started" in booted
        assert "stackctl appliance tiny-cpu" in booted
    finally:
        qemu.terminate()
        qemu.wait(timeout=60)
