"""Make an image's bytes a function of its contents: what BuildKit's rewrite-timestamp does.

Docker Engine 20.10's builders stamp every layer entry and the image config with the build's
clock (and the config with throw-away container ids), so two builds of the same files differ.
This rewrites a `docker save` archive: layer entries sorted, mtimes clamped to
SOURCE_DATE_EPOCH, the config's dates set to it and its per-build fields dropped. The image id
(the config's sha256) then depends only on what is in the image. The same layers and config
also make the OCI layout `image export` writes.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

_CHUNK = 4 * 2**20
_TIME_PAX = ("mtime", "atime", "ctime", "LIBARCHIVE.creationtime")
# Fields of a Docker image config that name the build's throw-away containers and parents.
_PER_BUILD = ("container", "container_config", "parent")


@dataclass(frozen=True)
class Layer:
    path: Path  # uncompressed layer tar
    digest: str  # "sha256:<hex>" of it (the diff_id)
    size: int


@dataclass(frozen=True)
class NormalImage:
    config: bytes
    layers: list[Layer]

    @property
    def image_id(self) -> str:
        return "sha256:" + hashlib.sha256(self.config).hexdigest()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalize_layer(source: IO[bytes], dest: Path, epoch: int) -> Layer:
    """Rewrite one layer tar: sorted entries, clamped mtimes, no time pax records."""
    with tarfile.open(fileobj=source, mode="r|") as stream:
        members: list[tuple[tarfile.TarInfo, bytes | None]] = []
        for member in stream:
            data = stream.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
            members.append((member, data))
    # By name, so parents precede children; hard links last, after whatever they point at.
    members.sort(key=lambda item: (item[0].islnk(), item[0].name))
    with (
        dest.open("wb") as raw,
        tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as out,
    ):
        for member, data in members:
            member.mtime = min(int(member.mtime), epoch)
            member.pax_headers = {k: v for k, v in member.pax_headers.items() if k not in _TIME_PAX}
            out.addfile(member, io.BytesIO(data) if data is not None else None)
    return Layer(dest, _sha256_file(dest), dest.stat().st_size)


def normalize_config(config: dict[str, Any], layers: list[Layer], epoch: int) -> bytes:
    config = {k: v for k, v in config.items() if k not in _PER_BUILD}
    config["created"] = _iso(epoch)
    inner = dict(config.get("config") or {})
    inner["Hostname"] = ""
    inner["Image"] = ""
    config["config"] = inner
    config["history"] = [{**h, "created": _iso(epoch)} for h in config.get("history", [])]
    config["rootfs"] = {"type": "layers", "diff_ids": [layer.digest for layer in layers]}
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def normalize_archive(archive: Path, work: Path, epoch: int) -> NormalImage:
    """A `docker save` archive (one image) -> its normal form, layers written under `work`."""
    with tarfile.open(archive) as saved:
        manifest = json.load(saved.extractfile("manifest.json"))  # type: ignore[arg-type]
        if len(manifest) != 1:
            raise ValueError(f"{archive}: expected one image, found {len(manifest)}")
        entry = manifest[0]
        config = json.load(saved.extractfile(entry["Config"]))  # type: ignore[arg-type]
        layers = []
        for index, name in enumerate(entry["Layers"]):
            handle = saved.extractfile(name)
            assert handle is not None
            layers.append(normalize_layer(handle, work / f"layer{index}.tar", epoch))
    return NormalImage(normalize_config(config, layers, epoch), layers)


def _add(out: tarfile.TarFile, name: str, epoch: int, data: bytes | None = None,
         path: Path | None = None) -> None:  # fmt: skip
    info = tarfile.TarInfo(name)
    info.mtime = epoch
    info.mode = 0o644
    if path is not None:
        info.size = path.stat().st_size
        with path.open("rb") as handle:
            out.addfile(info, handle)
        return
    payload = data or b""
    info.size = len(payload)
    out.addfile(info, io.BytesIO(payload))


def write_docker_archive(image: NormalImage, tag: str, dest: Path, epoch: int) -> Path:
    """What `docker load` takes: the normal config and layers under the given tag."""
    hexid = image.image_id.removeprefix("sha256:")
    names = [f"{layer.digest.removeprefix('sha256:')}/layer.tar" for layer in image.layers]
    manifest = [{"Config": f"{hexid}.json", "RepoTags": [tag], "Layers": names}]
    with (
        dest.open("wb") as raw,
        tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as out,
    ):
        _add(out, f"{hexid}.json", epoch, image.config)
        for name, layer in zip(names, image.layers, strict=True):
            _add(out, name, epoch, path=layer.path)
        _add(out, "manifest.json", epoch, json.dumps(manifest, sort_keys=True).encode())
    return dest


def write_oci_layout(image: NormalImage, tag: str, dest: Path, epoch: int) -> str:
    """An OCI image layout tar (uncompressed layers); returns the manifest digest."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": image.image_id, "size": len(image.config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer.digest, "size": layer.size} for layer in image.layers],
    }  # fmt: skip
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    manifest_digest = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": manifest["mediaType"], "digest": manifest_digest,
                       "size": len(manifest_bytes),
                       "annotations": {"org.opencontainers.image.ref.name": tag}}],
    }  # fmt: skip
    blobs: list[tuple[str, bytes | None, Path | None]] = [
        (image.image_id, image.config, None),
        (manifest_digest, manifest_bytes, None),
        *((layer.digest, None, layer.path) for layer in image.layers),
    ]
    tmp = dest.with_name(dest.name + ".part")
    with (
        tmp.open("wb") as raw,
        tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as out,
    ):
        _add(out, "oci-layout", epoch, b'{"imageLayoutVersion":"1.0.0"}')
        _add(out, "index.json", epoch, json.dumps(index, sort_keys=True).encode())
        for digest, data, path in sorted(blobs, key=lambda b: b[0]):
            _add(out, f"blobs/sha256/{digest.removeprefix('sha256:')}", epoch, data, path)
    shutil.move(tmp, dest)
    return manifest_digest
