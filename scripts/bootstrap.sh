#!/usr/bin/env bash
# Create .venv with stackctl and its test tools; install the system tools the tests drive.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v c++ >/dev/null || need_apt+=(build-essential)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
# The host engine builds (CPU, then Vulkan) share compiled objects through ccache.
command -v ccache >/dev/null || need_apt+=(ccache)
# The render tests build the CPU Containerfile for real and check quadlets where podman has them.
command -v buildah >/dev/null || need_apt+=(buildah)
command -v podman >/dev/null || need_apt+=(podman)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
# The interrupted-download test serves the model over HTTPS with a self-signed certificate.
command -v openssl >/dev/null || need_apt+=(openssl)
# scripts/gen_pci_snapshot.py reads Debian's pci.ids (hwdata) to regenerate src/stackctl/data/pci_gpus.json
[ -f /usr/share/misc/pci.ids ] || need_apt+=(pci.ids)
# Appliance disks: extlinux makes them bootable; qemu boots them under KVM in the image tests.
command -v extlinux >/dev/null || need_apt+=(extlinux)
command -v sfdisk >/dev/null || need_apt+=(fdisk)  # the disk's partition table
command -v qemu-system-x86_64 >/dev/null || need_apt+=(qemu-system-x86)
command -v chromium >/dev/null || need_apt+=(chromium)  # report test: headless screenshot
# The Vulkan end-to-end test runs on Mesa's software Vulkan device (lavapipe).
command -v vulkaninfo >/dev/null || need_apt+=(vulkan-tools mesa-vulkan-drivers)
if [ "${#need_apt[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing system packages: ${need_apt[*]} (install them as root)" >&2
        exit 1
    fi
    echo "installing system packages: ${need_apt[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
