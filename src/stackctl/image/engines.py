"""Container engines that build a lock's image: the Docker Engine (through its API) or buildah.

Docker Engine 20.10 (Debian 12) has neither SOURCE_DATE_EPOCH in its BuildKit nor buildx, so its
builds are made reproducible after the fact (stackctl.image.normalize) and loaded back under the
tag. buildah applies the lock's epoch itself (`--timestamp`). Each engine keeps the toolchain
stage as its own tagged image, so "clean storage" still holds the base and the compilers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from stackctl.errors import ImageError
from stackctl.image.normalize import NormalImage, normalize_archive, write_docker_archive

OnLine = Callable[[str], None]


@dataclass(frozen=True)
class BuildRequest:
    context: Path
    tag: str
    toolchain_tag: str
    epoch: int
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None  # None: the last stage (with the model)
    background: bool = False  # lowest CPU priority (made ahead of time beside other work)


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    digest: str
    size: int
    engine: str
    guarantee: str  # how this path makes digests equal, or why it cannot


class Engine(Protocol):
    name: str

    def has_image(self, ref: str) -> bool: ...
    def image_id(self, ref: str) -> str: ...
    def layer_digests(self, ref: str) -> list[str]: ...
    def build_toolchain(self, request: BuildRequest, on_line: OnLine) -> None: ...
    def build(self, request: BuildRequest, on_line: OnLine) -> BuiltImage: ...
    def clean(self, tag: str, keep: list[str]) -> None: ...
    def normal_form(self, tag: str, work: Path, epoch: int) -> NormalImage: ...


def _docker_client() -> Any:
    import docker  # the SDK loads only for image commands

    try:
        client = docker.from_env(timeout=3600)
        client.ping()
    except Exception as exc:  # the SDK raises several unrelated types for "no daemon"
        raise ImageError(
            f"no Docker Engine at {os.environ.get('DOCKER_HOST', 'the default socket')}: {exc}"
        ) from exc
    return client


class DockerEngine:
    name = "docker"

    def __init__(self) -> None:
        self.client = _docker_client()

    def has_image(self, ref: str) -> bool:
        import docker

        try:
            self.client.images.get(ref)
        except docker.errors.ImageNotFound:
            return False
        return True

    def image_id(self, ref: str) -> str:
        return str(self.client.images.get(ref).id)

    def layer_digests(self, ref: str) -> list[str]:
        return list(self.client.images.get(ref).attrs["RootFS"]["Layers"])

    def _stream(self, request: BuildRequest, tag: str, target: str | None, on_line: OnLine) -> None:
        stream = self.client.api.build(
            path=str(request.context), dockerfile="Containerfile", tag=tag, target=target,
            buildargs=request.build_args, rm=True, forcerm=True, decode=True, pull=False,
            container_limits={"cpushares": 2} if request.background else None,
        )  # fmt: skip
        for chunk in stream:
            if "error" in chunk:
                raise ImageError(
                    f"docker build of {request.tag} failed: {chunk['error'].strip()}",
                    details=[str(chunk.get("errorDetail", {}).get("message", ""))[-2000:]],
                )
            text = chunk.get("stream", "")
            for line in text.splitlines():
                if line.strip():
                    on_line(line.rstrip())

    def build_toolchain(self, request: BuildRequest, on_line: OnLine) -> None:
        self._stream(request, request.toolchain_tag, "toolchain", on_line)

    def build(self, request: BuildRequest, on_line: OnLine) -> BuiltImage:
        self.build_toolchain(request, on_line)
        raw = f"localhost/stackctl-raw:{os.getpid()}"
        try:
            self._stream(request, raw, request.target, on_line)
            on_line("normalizing layers and config to SOURCE_DATE_EPOCH")
            with tempfile.TemporaryDirectory(prefix="stackctl-image-") as work:
                image = self.normal_form(raw, Path(work), request.epoch)
                archive = write_docker_archive(
                    image, request.tag, Path(work) / "load.tar", request.epoch
                )
                with archive.open("rb") as handle:
                    self.client.api.load_image(handle)
        finally:
            if self.has_image(raw):
                self.client.api.remove_image(raw)
        built = self.client.images.get(request.tag)
        if built.id != image.image_id:
            raise ImageError(f"{request.tag}: loaded as {built.id}, expected {image.image_id}")
        return BuiltImage(
            request.tag, image.image_id, int(built.attrs.get("Size", 0)), self.name,
            "layers and config rewritten to SOURCE_DATE_EPOCH after the build (Docker Engine "
            "20.10 has no rewrite-timestamp): equal file contents give equal digests",
        )  # fmt: skip

    def normal_form(self, tag: str, work: Path, epoch: int) -> NormalImage:
        saved = work / "saved.tar"
        with saved.open("wb") as out:
            for block in self.client.api.get_image(tag):
                out.write(block)
        return normalize_archive(saved, work, epoch)

    def _ancestry(self, image_id: str) -> set[str]:
        chain: set[str] = set()
        while image_id and image_id not in chain:
            chain.add(image_id)
            image_id = self.client.api.inspect_image(image_id).get("Parent") or ""
        return chain

    def clean(self, tag: str, keep: list[str]) -> None:
        """Clean storage for a rebuild: only `keep` (base and toolchain) and their parents stay.

        The classic builder caches every step as an untagged parent image; each one that
        descends from a kept image is ours, and goes, so the rebuild really compiles again.
        """
        import docker

        kept = set().union(
            *(self._ancestry(self.image_id(ref)) for ref in keep if self.has_image(ref))
        )
        if self.has_image(tag):
            self.client.api.remove_image(tag)
        ours = []
        for image in self.client.images.list(all=True):
            if image.id in kept or image.tags:
                continue
            chain = self._ancestry(image.id)
            if chain & kept:
                ours.append((len(chain), image.id))
        for _, image_id in sorted(ours, reverse=True):  # children before parents
            with contextlib.suppress(docker.errors.APIError):  # went with a child already
                self.client.api.remove_image(image_id, force=True)


@dataclass(frozen=True)
class BuildahStorage:
    root: Path
    runroot: Path

    @classmethod
    def default(cls) -> BuildahStorage:
        base = Path(os.environ.get("STACKCTL_BUILDAH_ROOT", "/var/cache/stackctl/buildah"))
        return cls(base / "root", base / "run")


class BuildahEngine:
    name = "buildah"

    def __init__(self, storage: BuildahStorage | None = None) -> None:
        if shutil.which("buildah") is None:
            raise ImageError("buildah is not installed")
        self.storage = storage or BuildahStorage.default()

    def run(self, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
        argv = ["buildah", "--storage-driver", "vfs", "--root", str(self.storage.root),
                "--runroot", str(self.storage.runroot), *args]  # fmt: skip
        return subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def has_image(self, ref: str) -> bool:
        return self.run("inspect", "--type", "image", ref).returncode == 0

    def _inspect(self, ref: str) -> dict[str, Any]:
        done = self.run("inspect", "--type", "image", ref)
        if done.returncode != 0:
            raise ImageError(f"buildah has no image {ref}")
        data: dict[str, Any] = json.loads(done.stdout)
        return data

    def image_id(self, ref: str) -> str:
        return "sha256:" + str(self._inspect(ref)["FromImageID"]).removeprefix("sha256:")

    def layer_digests(self, ref: str) -> list[str]:
        return list(self._inspect(ref)["OCIv1"]["rootfs"]["diff_ids"])

    # OCI isolation (runc/crun, podman's dependency): chroot isolation here gives RUN steps a
    # /dev where `> /dev/null` fails, which apt-key needs.
    def _bud(self, request: BuildRequest, tag: str, target: str | None, on_line: OnLine) -> None:
        args = ["bud", "--isolation", "oci", "--layers", "--pull=never",
                "--timestamp", str(request.epoch), "-f", "Containerfile", "-t", tag]  # fmt: skip
        for key, value in sorted(request.build_args.items()):
            args += ["--build-arg", f"{key}={value}"]
        if target:
            args += ["--target", target]
        nice = ["nice", "-n", "19"] if request.background else []
        for line in _lines(self._popen([*args, str(request.context)], nice)):
            on_line(line)

    def _popen(self, args: list[str], prefix: list[str]) -> subprocess.Popen[str]:
        argv = [*prefix, "buildah", "--storage-driver", "vfs", "--root", str(self.storage.root),
                "--runroot", str(self.storage.runroot), *args]  # fmt: skip
        return subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def build_toolchain(self, request: BuildRequest, on_line: OnLine) -> None:
        self._bud(request, request.toolchain_tag, "toolchain", on_line)

    def build(self, request: BuildRequest, on_line: OnLine) -> BuiltImage:
        self.build_toolchain(request, on_line)
        self._bud(request, request.tag, request.target, on_line)
        size = self.run("images", "--format", "{{.Size}}", request.tag).stdout.strip()
        return BuiltImage(
            request.tag, self.image_id(request.tag), 0, self.name,
            f"buildah --timestamp {request.epoch}: file and image dates from the lock ({size})",
        )  # fmt: skip

    def normal_form(self, tag: str, work: Path, epoch: int) -> NormalImage:
        saved = work / "saved.tar"
        done = self.run("push", tag, f"docker-archive:{saved}:{tag}")
        if done.returncode != 0:
            raise ImageError(f"buildah could not export {tag}: {done.stderr.strip()[-500:]}")
        return normalize_archive(saved, work, epoch)

    def clean(self, tag: str, keep: list[str]) -> None:
        """Untagged (cached step) images go; tagged ones, the base and toolchain, stay."""
        del keep  # buildah's cached steps are untagged images: --prune takes exactly them
        self.run("rmi", "-f", tag)
        self.run("rmi", "--prune")


def _lines(process: subprocess.Popen[str]) -> Iterator[str]:
    assert process.stdout is not None
    tail: list[str] = []
    for line in process.stdout:
        tail = [*tail, line.rstrip()][-40:]
        if line.strip():
            yield line.rstrip()
    if process.wait() != 0:
        raise ImageError("buildah bud failed", details=tail)


def open_engine(choice: str) -> Engine:
    """`auto`: the Docker Engine where one answers, else buildah; the error lists both tries."""
    tried = []
    for name in ["docker", "buildah"] if choice == "auto" else [choice]:
        try:
            return DockerEngine() if name == "docker" else BuildahEngine()
        except ImageError as exc:
            tried.append(f"{name}: {exc.message}")
    raise ImageError(
        "no container engine available",
        details=tried,
        hint="start a Docker Engine (or set DOCKER_HOST), or install buildah "
        "(apt-get install buildah podman)",
    )
