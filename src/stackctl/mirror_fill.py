"""Fill an artefact mirror: every pinned file of some locks, fetched and verified, into a folder.

A box without internet is deployed from such a folder (`apply --mirror DIR`). The download
itself is the model role's own `stackctl-fetch` (sources tried in order, sha256-checked, atomic
rename), run here on the controller, so a mirror holds exactly what a box would have fetched.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stackctl.errors import MirrorError
from stackctl.mirror import find_in_mirror, sha256_file
from stackctl.models.catalog import Catalog
from stackctl.models.lock import Lockfile
from stackctl.models.resolved import ArtefactPin
from stackctl.render_plan import fetch_sources
from stackctl.resources import roles_dir

FillStatus = Literal["present", "fetched"]


@dataclass(frozen=True)
class FillResult:
    file: str
    status: FillStatus
    sha256: str
    size: int


def lock_pins(lock: Lockfile) -> list[ArtefactPin]:
    """The engine source, the model (every shard of a split GGUF) and the draft model."""
    r = lock.resolved
    pins = [r.engine.source, *shard_pins(r.model.artefact)]
    if r.speculative.draft is not None:
        pins.append(r.speculative.draft.artefact)
    return pins


def require_verified(lock: Lockfile) -> None:
    """`--require-verified`: refuse a lock with any artefact whose sha256 is not yet known."""
    unknown = [pin.file for pin in lock_pins(lock) if pin.sha256 is None]
    if unknown:
        raise MirrorError(
            f"{len(unknown)} pinned artefact(s) have no known sha256 (unverified)",
            details=unknown,
            hint="apply once without --require-verified to record them at the first fetch, "
            "or pin their sha256 in the catalog from a published source",
        )


def shard_pins(pin: ArtefactPin) -> list[ArtefactPin]:
    """A split GGUF's shards as pins of their own (only the first shard's sha256 is known)."""
    if pin.parts == 1 or "-00001-of-" not in pin.file:
        return [pin]
    stem = pin.file.split("-00001-of-")[0]
    base_url = pin.url[: len(pin.url) - len(pin.file)]
    shards = []
    for index in range(1, pin.parts + 1):
        file = f"{stem}-{index:05d}-of-{pin.parts:05d}.gguf"
        shards.append(
            pin.model_copy(
                update={"file": file, "url": base_url + file, "parts": 1, "sources": [],
                        "sha256": pin.sha256 if index == 1 else None, "size": None}
            )
        )  # fmt: skip
    return shards


def shipped_pins(catalog: Catalog, pinned_models: Iterable[tuple[str, str]]) -> list[ArtefactPin]:
    """Without a lock: every engine source in the catalog and the files the shipped stacks pin."""
    pins = [
        ArtefactPin(url=e.source.url, file=e.source.file, sha256=e.source.sha256,
                    size=e.source.size, verified=e.source.sha256 is not None,
                    origin=e.source.origin)
        for e in catalog.engines if e.source.sha256 is not None
    ]  # fmt: skip
    wanted = set(pinned_models)
    for a in catalog.artefacts:
        if (a.model, a.quant) in wanted:
            pins.append(
                ArtefactPin(url=a.url, file=a.file, sha256=a.sha256, size=a.size,
                            verified=a.sha256 is not None, origin=a.origin, parts=a.parts,
                            sources=a.sources)
            )  # fmt: skip
    return pins


def _present(mirror: Path, pin: ArtefactPin) -> Path | None:
    try:
        return find_in_mirror(mirror, pin)
    except MirrorError:
        return None


def fetch_into(mirror: Path, pin: ArtefactPin) -> None:
    script = roles_dir() / "stackctl_model" / "files" / "stackctl-fetch"
    argv = [sys.executable, str(script), "--sources", json.dumps(fetch_sources(pin)),
            str(mirror / pin.file), pin.sha256 or "-"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reasons = [line.removeprefix("stackctl-fetch: ") for line in done.stderr.splitlines()]
        raise MirrorError(
            f"{mirror / pin.file}: could not fetch {pin.file}",
            details=reasons[-8:],
            hint="check the network to the sources named above, or copy the file in by hand",
        )


def fill(
    mirror: Path,
    pins: list[ArtefactPin],
    on_start: Callable[[int, int, ArtefactPin], None] = lambda _i, _n, _p: None,
) -> list[FillResult]:
    """Fetch what the mirror lacks; a file already there counts only with the pinned sha256."""
    mirror.mkdir(parents=True, exist_ok=True)
    results = []
    unique = list({pin.file: pin for pin in pins}.values())
    for index, pin in enumerate(unique, 1):
        status: FillStatus = "present"
        path = _present(mirror, pin)
        if path is None:
            on_start(index, len(unique), pin)
            fetch_into(mirror, pin)
            status, path = "fetched", mirror / pin.file
        results.append(FillResult(pin.file, status, sha256_file(path), path.stat().st_size))
    return results
