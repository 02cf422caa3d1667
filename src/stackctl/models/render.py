"""What rendering produces: files, and where the stack lives on a host."""

from __future__ import annotations

from pydantic import Field

from stackctl.models.base import StrictModel


class RenderedFile(StrictModel):
    path: str = Field(description="relative to the rendered tree's root")
    content: str
    mode: int = 0o644


class HostLayout(StrictModel):
    """Where apply installs things on a host. Roles get the same values through vars."""

    prefix: str = "/opt/stackctl"
    cache_dir: str = "/var/cache/stackctl"
    state_dir: str = "/var/lib/stackctl"
    log_dir: str = "/var/log/stackctl"
    config_dir: str = "/etc/stackctl"
    unit_dir: str = "/etc/systemd/system"
    quadlet_dir: str = "/etc/containers/systemd"
    launchd_dir: str = "/Library/LaunchDaemons"
    service_user: str = "stackctl"
