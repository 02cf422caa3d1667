"""The image inputs a lock records: base images, pinned packages and SOURCE_DATE_EPOCH."""

from __future__ import annotations

import re
from datetime import datetime

from stackctl.models.catalog import Catalog
from stackctl.models.resolved import ImagePins, ResolvedStack

_VERSION = re.compile(r"(\d+(?:\.\d+)*)")
NO_IMAGE_BACKENDS = ("metal",)  # macOS engines run natively, not in Linux containers


def image_key(resolved: ResolvedStack) -> str:
    """Which catalog/images.yaml set a stack builds on: CUDA 13 needs its own base."""
    cuda = _VERSION.search(resolved.requirements.runtime.get("cuda") or "")
    if resolved.engine.backend == "cuda" and cuda and int(cuda.group(1).split(".")[0]) >= 13:
        return "cuda13"
    return resolved.engine.backend


def image_pins(resolved: ResolvedStack, catalog: Catalog) -> ImagePins | None:
    key = image_key(resolved)
    images = catalog.images.get(key)
    if resolved.engine.backend in NO_IMAGE_BACKENDS or images is None:
        return None
    engine = next(
        e for e in catalog.engines
        if e.name == resolved.engine.name and e.version == resolved.engine.version
    )  # fmt: skip
    released = engine.source.released
    if released is None:
        return None  # no date to derive the epoch from: images of this engine are not pinned
    epoch = int(datetime.fromisoformat(released.replace("Z", "+00:00")).timestamp())
    return ImagePins(
        key=key,
        build=images.build,
        run=images.run,
        build_packages=images.build_packages,
        run_packages=images.run_packages,
        build_dependencies=images.build_dependencies,
        run_dependencies=images.run_dependencies,
        source_date_epoch=epoch,
        epoch_basis=f"{engine.name} {engine.version} source published {released}",
    )


def with_image_pins(resolved: ResolvedStack, catalog: Catalog) -> ResolvedStack:
    return resolved.model_copy(update={"image": image_pins(resolved, catalog)})
