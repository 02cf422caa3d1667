"""A server bound beyond loopback demands its API key, for real.

The test makes a network namespace joined to this one by a veth pair, starts the real
llama-server from the build cache with the command line stackctl renders for a lock whose host
is the veth address (so `--api-key-file` comes from layout.service_argv), and sends requests
from inside the namespace: without the key they are refused, with it they are answered. The key
is in no command line and no log.

It reuses the build test_apply_e2e.py makes (this file's name sorts after it, so a clean run
builds first and this test runs; alone, before any build, it skips). Run it under the
heavy-job lock: flock /tmp/stackctl-heavy.lock .venv/bin/pytest -m e2e ...
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from stackctl import layout
from stackctl.detect import detect_hardware
from stackctl.detect.runner import LiveRunner
from stackctl.lock import content_hash
from stackctl.models.lock import Lockfile
from stackctl.models.render import HostLayout
from stackctl.pipeline import load_stack_inputs, make_lock

pytestmark = pytest.mark.e2e

BUILD = Path("/var/cache/stackctl/build")
MODEL = Path("/var/cache/stackctl/test-mirror/gemma-3-270m-q4_k_m.gguf")
HOST_ADDR, NS_ADDR = "10.251.77.1", "10.251.77.2"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def namespace() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("curl") is None:
        pytest.skip("needs root, ip and curl")
    name = f"stk{os.getpid() % 100000}"
    host_end, ns_end = f"{name}h", f"{name}n"
    try:
        _ip("netns", "add", name)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot make a network namespace here: {exc.stderr!r}")
    try:
        _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        _ip("link", "set", ns_end, "netns", name)
        _ip("addr", "add", f"{HOST_ADDR}/30", "dev", host_end)
        _ip("link", "set", host_end, "up")
        _ip("-n", name, "addr", "add", f"{NS_ADDR}/30", "dev", ns_end)
        _ip("-n", name, "link", "set", ns_end, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "link", "del", host_end], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


def _lock_on(host: str, port: int) -> Lockfile:
    # This box's own lock (its quirks too: --no-repack on AMX CPUs), as apply would make it.
    lock = make_lock(load_stack_inputs("tiny-cpu", detect_hardware(LiveRunner())))
    args = list(lock.resolved.runtime.server_args)
    args[args.index("--host") + 1] = host
    args[args.index("--port") + 1] = str(port)
    runtime = lock.resolved.runtime.model_copy(
        update={"host": host, "port": port, "server_args": args}
    )
    resolved = lock.resolved.model_copy(update={"runtime": runtime})
    return lock.model_copy(
        update={"resolved": resolved, "content_hash": content_hash(lock.inputs, resolved)}
    )


def _box(tmp_path: Path, lock: Lockfile) -> HostLayout:
    """A HostLayout in tmp_path whose engine and model are the build cache's and the mirror's."""
    host = HostLayout(
        prefix=str(tmp_path / "opt"),
        state_dir=str(tmp_path / "state"),
        config_dir=str(tmp_path / "etc"),
    )
    engine = lock.resolved.engine
    built = BUILD / f"{engine.name}-{engine.build_key}" / "out"
    if not (built / "bin" / "llama-server").is_file() or not MODEL.is_file():
        pytest.skip("the llama-server build or the Gemma mirror is not there yet")
    Path(layout.engine_dir(lock, host)).parent.mkdir(parents=True)
    Path(layout.engine_dir(lock, host)).symlink_to(built)
    model = Path(layout.model_path(lock, host))
    model.parent.mkdir(parents=True)
    model.symlink_to(MODEL)
    return host


def _curl(namespace: str, url: str, key: str | None = None) -> str:
    argv = ["ip", "netns", "exec", namespace, "curl", "-s", "-o", "/dev/null"]
    argv += ["-w", "%{http_code}", "--max-time", "60", "-H", "Content-Type: application/json"]
    if key is not None:
        argv += ["-H", f"Authorization: Bearer {key}"]
    argv += ["-d", '{"prompt": "1, 2, 3,", "max_tokens": 2}', url]
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


def test_off_loopback_requests_need_the_key(tmp_path: Path, namespace: str) -> None:
    port = 18000 + os.getpid() % 1000
    lock = _lock_on(HOST_ADDR, port)
    host = _box(tmp_path, lock)
    key_file = layout.api_key_file(lock, host)
    assert key_file == f"{host.config_dir}/{lock.resolved.service}.api-key"
    key = secrets.token_urlsafe(32)
    Path(key_file).parent.mkdir(parents=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, f"{key}\n".encode())
    os.close(fd)
    argv = layout.service_argv(lock, host)
    assert argv[-2:] == ["--api-key-file", key_file]
    assert key not in " ".join(argv)
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://{HOST_ADDR}:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=3) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        assert server.poll() is None, log.read_text()[-2000:]
        completions = f"{base}/v1/completions"
        assert _curl(namespace, completions) == "401"
        assert _curl(namespace, completions, key="wrong-" + key) == "401"
        assert _curl(namespace, completions, key=key) == "200"
        cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes()
        assert key.encode() not in cmdline
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert key not in log.read_text(errors="replace")
