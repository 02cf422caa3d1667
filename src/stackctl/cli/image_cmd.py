"""`stackctl image build | verify | export`: appliance images from a lock, reproducibly."""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path
from typing import Any

from stackctl.cli.hardware_args import add_hardware_options, hardware_from_args
from stackctl.cli.output import info, print_json
from stackctl.errors import ImageError
from stackctl.models.lock import Lockfile
from stackctl.pipeline import default_lock_path, read_lock
from stackctl.spec import load_stack, stack_path

DEFAULT_MIRROR = "/var/cache/stackctl/mirror"
_STEP = re.compile(r"^(Step \d+/\d+ : .{0,90}|STEP \d+(/\d+)?: .{0,90}|\[\s*\d+%\].{0,70})")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "lock", nargs="?", help="lockfile (default: the default stack's for this box)"
    )
    add_hardware_options(parser)
    parser.add_argument(
        "--engine", choices=["auto", "docker", "buildah"], default="auto",
        help="container engine (auto: the Docker Engine at DOCKER_HOST, else buildah)",
    )  # fmt: skip
    parser.add_argument(
        "--base", metavar="REF", help="local base image (tag or sha256:<id>) for both stages"
    )
    parser.add_argument(
        "--mirror", metavar="DIR",
        help=f"artefact mirror for the context (default $STACKCTL_MIRROR or {DEFAULT_MIRROR})",
    )  # fmt: skip
    parser.add_argument(
        "--model-volume", action="store_true",
        help="leave the model out; run with the model folder mounted at /models",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def register(sub: Any) -> None:
    parser = sub.add_parser("image", help="build, verify and export appliance images from a lock")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    build = verbs.add_parser("build", help="build the lock's image")
    _common(build)
    build.add_argument("--tag", help="image tag (default localhost/stackctl-<stack>:<build key>)")
    build.add_argument("--with-model", action="store_true", help="bake the model in (default)")
    build.set_defaults(handler=run_build)
    verify = verbs.add_parser(
        "verify", help="rebuild from clean storage and compare digests (exit 0 only if equal)"
    )
    _common(verify)
    verify.add_argument("image", nargs="?", help="an image built before (default: build it now)")
    verify.set_defaults(handler=run_verify)
    export = verbs.add_parser("export", help="write the image as an OCI layout tar")
    _common(export)
    export.add_argument("-o", "--output", required=True, help="file to write (appliance.oci.tar)")
    export.set_defaults(handler=run_export)
    disk = verbs.add_parser(
        "disk", help="a bootable raw disk of the image (kernel, systemd, the service enabled)"
    )
    _common(disk)
    disk.add_argument("-o", "--output", required=True, help="raw disk file to write")
    disk.add_argument(
        "--api-key-file", required=True, help="API key the appliance's server requires"
    )
    disk.set_defaults(handler=run_disk)


def _lock(args: argparse.Namespace) -> tuple[Lockfile, Path]:
    if args.lock:
        path = Path(args.lock)
    else:
        spec = load_stack(stack_path(None))
        path = default_lock_path(spec.name, hardware_from_args(args).name)
    return read_lock(path), path


def _progress() -> Any:
    """Build steps and compile percentages, one line each, to stderr (stdout stays JSON)."""
    started = time.monotonic()

    def show(line: str) -> None:
        found = _STEP.match(line.strip())
        if found:
            info(f"  [{time.monotonic() - started:5.0f}s] {found.group(0)}")

    return show


def _build(args: argparse.Namespace, lock: Lockfile, path: Path) -> Any:
    from stackctl.image.build import build_image
    from stackctl.image.engines import open_engine

    engine = open_engine(args.engine)
    mirror = Path(args.mirror or os.environ.get("STACKCTL_MIRROR") or DEFAULT_MIRROR)
    options = _options(args)
    info(f"building {path} with {engine.name}")
    return engine, build_image(lock, path, engine, mirror, options, _progress())


def run_build(args: argparse.Namespace) -> int:
    lock, path = _lock(args)
    _, built = _build(args, lock, path)
    if args.json:
        print_json({"tag": built.tag, "digest": built.digest, "engine": built.engine,
                    "size": built.size, "reproducible": built.guarantee})  # fmt: skip
    else:
        info(f"built {built.tag}\n  digest {built.digest}\n  {built.guarantee}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from stackctl.image.build import default_tag, kept_images

    lock, path = _lock(args)
    if args.image:
        from stackctl.image.engines import open_engine

        engine = open_engine(args.engine)
        first_tag, first_digest = args.image, engine.image_id(args.image)
    else:
        engine, built = _build(args, lock, path)
        first_tag, first_digest = built.tag, built.digest
    first_layers = engine.layer_digests(first_tag)
    info(f"first build {first_digest}; rebuilding from clean storage (base and toolchain stay)")
    options = _options(args)
    engine.clean(default_tag(lock, options), kept_images(lock, options, engine))
    _, second = _build(args, lock, path)
    second_layers = engine.layer_digests(second.tag)
    equal = first_digest == second.digest
    diff = [
        f"layer {index}: {a} vs {b}"
        for index, (a, b) in enumerate(zip(first_layers, second_layers, strict=False))
        if a != b
    ]
    if len(first_layers) != len(second_layers):
        diff.append(f"layer count: {len(first_layers)} vs {len(second_layers)}")
    if not equal and not diff:
        diff.append("equal layers, different config (labels, env or history)")
    if args.json:
        print_json(
            {"engine": engine.name, "first": first_digest, "second": second.digest,
             "equal": equal, "differences": diff, "guarantee": second.guarantee}
        )  # fmt: skip
    else:
        info(f"first  {first_digest}\nsecond {second.digest}\n"
             f"{'equal' if equal else 'DIFFERENT'} ({second.guarantee})")  # fmt: skip
        for line in diff:
            info(f"  {line}")
    return 0 if equal else 1


def _options(args: argparse.Namespace) -> Any:
    from stackctl.image.build import ImageOptions

    return ImageOptions(
        tag=getattr(args, "tag", None), with_model=not args.model_volume, base=args.base
    )


def run_export(args: argparse.Namespace) -> int:
    from stackctl.image.build import default_tag, export_image, pins_of
    from stackctl.image.engines import open_engine

    lock, path = _lock(args)
    tag = default_tag(lock, _options(args))
    engine = open_engine(args.engine)
    if not engine.has_image(tag):
        engine, built = _build(args, lock, path)
        tag = built.tag
    out = Path(args.output)
    digest = export_image(engine, tag, out, pins_of(lock).source_date_epoch)
    if args.json:
        print_json({"tag": tag, "output": str(out), "manifest_digest": digest})
    else:
        info(f"wrote {out} ({tag}, manifest {digest})")
    if not out.is_file():
        raise ImageError(f"{out}: export wrote nothing")
    return 0


def run_disk(args: argparse.Namespace) -> int:
    from stackctl.image.build import default_tag
    from stackctl.image.disk import build_disk
    from stackctl.image.engines import DockerEngine

    lock, path = _lock(args)
    args.engine = "docker"  # the disk is made from the Docker Engine's image
    engine = DockerEngine()
    tag = default_tag(lock, _options(args))
    if not engine.has_image(tag):
        _, built = _build(args, lock, path)
        tag = built.tag
    key = Path(args.api_key_file)
    if not key.is_file():
        raise ImageError(f"{key}: no such API key file")
    disk = build_disk(engine, lock, tag, key, Path(args.output), _progress())
    if args.json:
        print_json({"disk": str(disk.path), "size": disk.size, "kernel": disk.kernel,
                    "service": disk.service})  # fmt: skip
    else:
        info(f"wrote {disk.path} ({disk.size / 2**30:.1f} GiB, kernel {disk.kernel})")
        info(f"boot: qemu-system-x86_64 -accel kvm -m 2048 -drive file={disk.path},format=raw")
    return 0
