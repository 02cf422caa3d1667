"""Host paths derived from a lock and a HostLayout, shared by render and the day-two commands."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from stackctl.models.lock import Lockfile
from stackctl.models.render import HostLayout
from stackctl.models.resolved import ArtefactPin

LAYOUT_ENV = "STACKCTL_LAYOUT"  # a YAML file of HostLayout fields: a box laid out elsewhere


def host_layout() -> HostLayout:
    """This box's layout: the defaults, or those $STACKCTL_LAYOUT's file changes (a box whose
    /opt or /var lives elsewhere; an end-to-end test that must not share the box's engines,
    build cache and models). Commands acting on this box use it; `render` and images do not."""
    path = os.environ.get(LAYOUT_ENV)
    if not path:
        return HostLayout()
    from stackctl.errors import InputError
    from stackctl.yamlio import read_yaml, validate_yaml

    file = Path(path)
    data = read_yaml(file)
    if not isinstance(data, dict):
        raise InputError(f"{file}: a layout file must be a YAML mapping of HostLayout fields")
    host = validate_yaml(HostLayout, data, file)
    relative = [k for k, v in host.model_dump().items() if k != "service_user" and v[:1] != "/"]
    if relative:
        raise InputError(f"{file}: {', '.join(relative)} must be absolute paths")
    return host


def engine_dir(lock: Lockfile, layout: HostLayout) -> str:
    engine = lock.resolved.engine
    return f"{layout.prefix}/engines/{engine.name}-{engine.build_key}"


def build_log(lock: Lockfile, layout: HostLayout) -> str:
    """The engine build's log in the build cache (the engine role writes it there)."""
    engine = lock.resolved.engine
    return f"{layout.cache_dir}/build/{engine.name}-{engine.build_key}/build.log"


SERVER_BINARIES = {"ds4": "bin/ds4-server", "mlx-lm": "venv/bin/mlx_lm.server"}


def server_binary(lock: Lockfile, layout: HostLayout) -> str:
    binary = SERVER_BINARIES.get(lock.resolved.engine.name, "bin/llama-server")
    return f"{engine_dir(lock, layout)}/{binary}"


def lib_dir(lock: Lockfile, layout: HostLayout) -> str:
    """Shared libraries of a shared-lib build (HIP), installed beside bin/."""
    return f"{engine_dir(lock, layout)}/lib"


def launchd_label(lock: Lockfile) -> str:
    return f"org.stackctl.{lock.resolved.service}"


def image_name(lock: Lockfile) -> str:
    """The local image `podman build` tags the Containerfile as; the build key names the flags."""
    return f"localhost/{lock.resolved.service}:{lock.resolved.engine.build_key}"


def artefact_path(artefact: ArtefactPin, model_id: str, layout: HostLayout) -> str:
    """Where a model file lives: a folder named by its sha256, or by the model while unknown."""
    folder = artefact.sha256[:16] if artefact.sha256 else f"unverified-{model_id}"
    return f"{layout.state_dir}/models/{folder}/{artefact.file}"


def model_path(lock: Lockfile, layout: HostLayout) -> str:
    return artefact_path(lock.resolved.model.artefact, lock.resolved.model.id, layout)


def draft_path(lock: Lockfile, layout: HostLayout) -> str | None:
    draft = lock.resolved.speculative.draft
    return artefact_path(draft.artefact, draft.id, layout) if draft else None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_key_file(lock: Lockfile, layout: HostLayout) -> str | None:
    """A server reachable beyond this box must demand a key: the service role generates it
    here (mode 0600, the service user's), and the server reads it with --api-key-file, so the
    key is never on a command line, in a unit, a lock or a log. None on loopback."""
    if is_loopback(lock.resolved.runtime.host):
        return None
    return f"{layout.config_dir}/{lock.resolved.service}.api-key"


def service_argv(lock: Lockfile, layout: HostLayout) -> list[str]:
    """The one command line, shared by the systemd unit and the supervised process."""
    draft = draft_path(lock, layout)
    key = api_key_file(lock, layout)
    return [
        server_binary(lock, layout),
        "--model",
        model_path(lock, layout),
        *lock.resolved.runtime.server_args,
        *(["--spec-draft-model", draft] if draft else []),
        *(["--api-key-file", key] if key else []),
    ]


def pid_file(lock: Lockfile, layout: HostLayout) -> str:
    return f"{layout.state_dir}/run/{lock.resolved.service}.pid"


def log_file(lock: Lockfile, layout: HostLayout) -> str:
    return f"{layout.log_dir}/{lock.resolved.service}.log"
