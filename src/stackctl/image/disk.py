"""A bootable disk of the same stack: the appliance image plus a kernel, systemd and the service.

The disk is made from the built image (so it carries the same engine build and model), not by a
second, different build: a `bootable` layer adds Debian's kernel, systemd and the unit, its
filesystem is exported into an ext4 partition, and extlinux boots it on BIOS firmware (qemu's
SeaBIOS, most PCs). Needs root, loop devices and Debian's extlinux (scripts/bootstrap.sh).
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from stackctl.errors import ImageError
from stackctl.image.engines import DockerEngine, OnLine
from stackctl.models.lock import Lockfile
from stackctl.quoting import systemd_quote

MBR = Path("/usr/lib/EXTLINUX/mbr.bin")
PART_OFFSET = 1 << 20  # the partition starts at 1 MiB
KEY_PATH = "/etc/stackctl/api-key"
KERNEL_PACKAGES = ["linux-image-amd64", "systemd-sysv", "udev", "initramfs-tools"]
# The host tools write_disk runs, with the Debian package of each (not all are in a minimal base).
DISK_TOOLS = {
    "mkfs.ext4": "e2fsprogs", "blkid": "util-linux", "sfdisk": "fdisk", "dd": "coreutils",
    "mount": "mount", "umount": "mount", "extlinux": "extlinux",
}  # fmt: skip


@dataclass(frozen=True)
class DiskImage:
    path: Path
    size: int
    kernel: str
    service: str


def guest_argv(lock: Lockfile) -> list[str]:
    """The image's entrypoint, with the API key from the disk's own key file."""
    r = lock.resolved
    model = f"/models/{r.model.artefact.file}"
    draft = r.speculative.draft
    return [
        "/usr/local/bin/llama-server", "--model", model, *r.runtime.server_args,
        *(["--spec-draft-model", f"/models/{draft.artefact.file}"] if draft else []),
        "--host", "0.0.0.0", "--api-key-file", KEY_PATH,
    ]  # fmt: skip


def unit_text(lock: Lockfile) -> str:
    r = lock.resolved
    exec_start = " ".join(systemd_quote(a) for a in guest_argv(lock))
    return (
        "[Unit]\n"
        f"Description=stackctl appliance {r.stack}\n"
        "After=network-online.target\nWants=network-online.target\n\n"
        "[Service]\nType=simple\nUser=stackctl\n"
        f"ExecStart={exec_start}\n"
        "Restart=on-failure\nRestartSec=5\nNoNewPrivileges=true\nProtectSystem=strict\n"
        "ProtectHome=true\nPrivateTmp=true\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


def bootable_containerfile(image_id: str, service: str, packages: list[str]) -> str:
    install = " ".join(packages)
    return (
        f"FROM {image_id}\n"
        "USER root\n"
        'SHELL ["/bin/bash", "-o", "pipefail", "-c"]\n'
        "RUN apt-get update \\\n"
        "    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
        f"{install} \\\n"
        "    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log\n"
        f"COPY {service}.service /etc/systemd/system/{service}.service\n"
        "COPY 20-dhcp.network /etc/systemd/network/20-dhcp.network\n"
        f"RUN systemctl enable {service}.service systemd-networkd.service \\\n"
        "    serial-getty@ttyS0.service \\\n"
        "    && passwd -l root\n"
    )  # fmt: skip


def _bootable_image(engine: DockerEngine, lock: Lockfile, tag: str, on_line: OnLine) -> str:
    service = lock.resolved.service
    with tempfile.TemporaryDirectory(prefix="stackctl-disk-ctx-") as tmp:
        ctx = Path(tmp)
        (ctx / "Containerfile").write_text(
            bootable_containerfile(engine.image_id(tag), service, KERNEL_PACKAGES)
        )
        (ctx / f"{service}.service").write_text(unit_text(lock))
        (ctx / "20-dhcp.network").write_text("[Match]\nName=e*\n\n[Network]\nDHCP=yes\n")
        bootable = f"{tag}-bootable"
        stream = engine.client.api.build(
            path=str(ctx), dockerfile="Containerfile", tag=bootable, rm=True, forcerm=True,
            decode=True, pull=False,
        )  # fmt: skip
        for chunk in stream:
            if "error" in chunk:
                raise ImageError(f"bootable layer for {tag} failed: {chunk['error'].strip()}")
            for line in chunk.get("stream", "").splitlines():
                if line.strip():
                    on_line(line.rstrip())
    return bootable


def _export_rootfs(engine: DockerEngine, image: str, dest: Path) -> None:
    container = engine.client.containers.create(image)
    try:
        tar = dest.with_suffix(".tar")
        with tar.open("wb") as out:
            for block in container.export():
                out.write(block)
    finally:
        container.remove(force=True)
    dest.mkdir()
    with tarfile.open(tar) as archive:
        archive.extractall(dest, filter="fully_trusted")  # our own image, root-owned files kept
    tar.unlink()


def _run(*argv: str, stdin: str | None = None) -> None:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ImageError(
            f"{argv[0]} failed: {done.stderr.strip()[-600:]}", details=[" ".join(argv)]
        )


def _kernel(rootfs: Path) -> tuple[str, str]:
    kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise ImageError("the bootable layer installed no kernel (/boot/vmlinuz-*)")
    version = kernels[-1].name.removeprefix("vmlinuz-")
    return f"/boot/vmlinuz-{version}", f"/boot/initrd.img-{version}"


def require_disk_tools() -> None:
    """Fail before any build when a host tool of write_disk is missing, naming its package."""
    missing = {tool: pkg for tool, pkg in DISK_TOOLS.items() if shutil.which(tool) is None}
    if not MBR.is_file():
        missing["mbr.bin"] = "extlinux"
    if missing:
        packages = " ".join(sorted(set(missing.values())))
        raise ImageError(
            f"writing a disk needs {', '.join(sorted(missing))}, not found on this machine",
            hint=f"apt-get install {packages} (scripts/bootstrap.sh installs them)",
        )


def write_disk(rootfs: Path, key_file: Path, dest: Path) -> DiskImage:
    """rootfs -> raw disk: MBR, one bootable ext4 partition, extlinux."""
    require_disk_tools()
    # An exported container's /etc/hostname is the engine's bind mount: empty.
    (rootfs / "etc" / "hostname").write_text("stackctl-appliance\n")
    key = rootfs / KEY_PATH.lstrip("/")
    key.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(key_file, key)
    key.chmod(0o600)
    uid = int(_passwd_uid(rootfs, "stackctl"))
    shutil.chown(key, uid, uid)
    kernel, initrd = _kernel(rootfs)
    used = sum(p.lstat().st_size for p in rootfs.rglob("*"))
    fs_size = (int(used * 1.3) + (256 << 20)) // (1 << 20) << 20
    part = dest.with_suffix(".part.ext4")
    _run("mkfs.ext4", "-q", "-F", "-L", "stackctl-root", "-O", "^64bit,^metadata_csum",
         "-d", str(rootfs), str(part), f"{fs_size // 1024}k")  # fmt: skip
    uuid = subprocess.run(["blkid", "-s", "UUID", "-o", "value", str(part)],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    tmp = dest.with_name(dest.name + ".part")
    with tmp.open("wb") as out:
        out.truncate(PART_OFFSET + fs_size)
    _run("sfdisk", "-q", str(tmp), stdin=f"label: dos\n{PART_OFFSET // 512},,L,*\n")
    _run("dd", f"if={part}", f"of={tmp}", "bs=1M", f"seek={PART_OFFSET >> 20}",
         "conv=notrunc,sparse", "status=none")  # fmt: skip
    part.unlink()
    _run("dd", f"if={MBR}", f"of={tmp}", "bs=440", "count=1", "conv=notrunc", "status=none")
    with tempfile.TemporaryDirectory(prefix="stackctl-disk-mnt-") as mnt:
        _run("mount", "-o", f"loop,offset={PART_OFFSET}", str(tmp), mnt)
        try:
            boot = Path(mnt) / "boot" / "extlinux"
            boot.mkdir(parents=True, exist_ok=True)
            (boot / "extlinux.conf").write_text(
                "DEFAULT appliance\nTIMEOUT 1\nLABEL appliance\n"
                f"  LINUX {kernel}\n  INITRD {initrd}\n"
                f"  APPEND root=UUID={uuid} rw console=ttyS0 net.ifnames=0 quiet\n"
            )
            _run("extlinux", "--install", str(boot))
        finally:
            _run("umount", mnt)
    tmp.replace(dest)
    return DiskImage(dest, dest.stat().st_size, kernel, "")


def _passwd_uid(rootfs: Path, user: str) -> str:
    for line in (rootfs / "etc" / "passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return fields[2]
    raise ImageError(f"the image has no user {user}")


def build_disk(
    engine: DockerEngine, lock: Lockfile, tag: str, key_file: Path, dest: Path, on_line: OnLine
) -> DiskImage:
    require_disk_tools()
    bootable = _bootable_image(engine, lock, tag, on_line)
    with tempfile.TemporaryDirectory(prefix="stackctl-disk-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        on_line(f"exporting {bootable}")
        _export_rootfs(engine, bootable, rootfs)
        on_line(f"writing {dest}")
        disk = write_disk(rootfs, key_file, dest)
    return DiskImage(disk.path, disk.size, disk.kernel, lock.resolved.service)
