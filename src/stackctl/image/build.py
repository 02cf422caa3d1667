"""`image build / verify / export` as stages: a build context from a lock, then an engine."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from stackctl.errors import ImageError
from stackctl.image.engines import BuildRequest, BuiltImage, Engine, OnLine
from stackctl.image.normalize import write_oci_layout
from stackctl.mirror_fill import fill, lock_pins
from stackctl.models.lock import Lockfile
from stackctl.models.resolved import ImagePins
from stackctl.pipeline import render_lock


@dataclass(frozen=True)
class ImageOptions:
    tag: str | None = None
    with_model: bool = True  # False: --model-volume, the `server` stage without model files
    base: str | None = None  # local base image (ref or sha256:<id>) for both stages


def pins_of(lock: Lockfile) -> ImagePins:
    if lock.resolved.image is None:
        raise ImageError(
            f"lock for {lock.resolved.stack} has no image pins "
            f"(backend {lock.resolved.engine.backend} or a lock from before them)",
            hint="re-lock with `stackctl lock`; macOS (Metal) stacks run natively, not in images",
        )
    return lock.resolved.image


def default_tag(lock: Lockfile, options: ImageOptions) -> str:
    if options.tag:
        return options.tag
    suffix = "" if options.with_model else "-server"
    return f"localhost/stackctl-{lock.resolved.stack}:{lock.resolved.engine.build_key}{suffix}"


def toolchain_tag(pins: ImagePins, base: str) -> str:
    """Keyed by its own inputs: the base and the pinned build packages."""
    key = hashlib.sha256(
        repr((base, pins.key, sorted(pins.build_install.items()))).encode()
    ).hexdigest()[:16]
    return f"localhost/stackctl-toolchain:{key}"


def build_request(
    lock: Lockfile, context: Path, options: ImageOptions, engine: Engine
) -> BuildRequest:
    pins = pins_of(lock)
    args = {"SOURCE_DATE_EPOCH": str(pins.source_date_epoch)}
    bases = {"STACKCTL_BUILD_BASE": pins.build, "STACKCTL_RUN_BASE": pins.run}
    for arg, pin in bases.items():
        ref = options.base or (f"{pin.ref}@{pin.digest}" if pin.digest else pin.ref)
        if not engine.has_image(ref):
            raise ImageError(
                f"base image {ref} is not in {engine.name}'s local storage, and no registry "
                "is reachable from here",
                hint="load or import it first (e.g. debootstrap + `docker import`), and pass "
                "its digest with --base",
            )
        args[arg] = ref
    return BuildRequest(
        context=context, tag=default_tag(lock, options),
        toolchain_tag=toolchain_tag(pins, args["STACKCTL_BUILD_BASE"]),
        epoch=pins.source_date_epoch, build_args=args,
        target=None if options.with_model else "server",
    )  # fmt: skip


def kept_images(lock: Lockfile, options: ImageOptions, engine: Engine) -> list[str]:
    """What clean storage keeps for a rebuild: the base images and the toolchain image."""
    request = build_request(lock, Path(), options, engine)
    bases = [request.build_args["STACKCTL_BUILD_BASE"], request.build_args["STACKCTL_RUN_BASE"]]
    return [request.toolchain_tag, *bases]


def prepare_context(
    lock: Lockfile, lock_path: Path, mirror: Path, dest: Path, with_model: bool
) -> Path:
    """The rendered tree plus the pinned files it COPYs, all dated SOURCE_DATE_EPOCH."""
    epoch = pins_of(lock).source_date_epoch
    render_lock(lock, lock_path, dest)
    pins = lock_pins(lock)
    fill(mirror, pins)
    wanted = pins if with_model else [lock.resolved.engine.source]
    for pin in wanted:
        target = dest / pin.file
        try:
            os.link(mirror / pin.file, target)
        except OSError:
            shutil.copy2(mirror / pin.file, target)
    for path in dest.rglob("*"):
        os.utime(path, (epoch, epoch), follow_symlinks=False)
    return dest


def build_image(
    lock: Lockfile, lock_path: Path, engine: Engine, mirror: Path, options: ImageOptions,
    on_line: OnLine,
) -> BuiltImage:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="stackctl-context-") as tmp:
        context = prepare_context(
            lock, lock_path, mirror, Path(tmp) / "context", options.with_model
        )
        return engine.build(build_request(lock, context, options, engine), on_line)


def build_toolchain(
    lock: Lockfile, lock_path: Path, engine: Engine, mirror: Path, options: ImageOptions,
    on_line: OnLine, *, background: bool = False,
) -> str:  # fmt: skip
    """Only the toolchain stage, tagged by its own inputs (the image clean storage keeps), so
    that it can be made ahead of a build (`background`: at the lowest CPU priority, beside
    other work); returns its tag."""
    with tempfile.TemporaryDirectory(prefix="stackctl-context-") as tmp:
        context = prepare_context(lock, lock_path, mirror, Path(tmp) / "context", False)
        request = replace(build_request(lock, context, options, engine), background=background)
        engine.build_toolchain(request, on_line)
        return request.toolchain_tag


def export_image(engine: Engine, tag: str, dest: Path, epoch: int) -> str:
    with tempfile.TemporaryDirectory(prefix="stackctl-export-") as work:
        image = engine.normal_form(tag, Path(work), epoch)
        return write_oci_layout(image, tag, dest, epoch)
