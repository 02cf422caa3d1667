"""Render a lock into the files a host needs: playbooks, vars, unit, Containerfile, README.

Pure: the lock and the templates in, `RenderedFile`s out. No host lookups, no environment, so the
same lock gives byte-identical files on any machine.
"""

from __future__ import annotations

import json
import plistlib
from pathlib import Path
from typing import Any

import jinja2

from stackctl import layout, render_plan
from stackctl.errors import RenderError
from stackctl.fsio import replace_tree
from stackctl.models.lock import Lockfile
from stackctl.models.render import HostLayout, RenderedFile
from stackctl.quoting import (
    docker_env,
    docker_env_key,
    json_quote,
    shell_quote,
    systemd_env,
    systemd_quote,
    systemd_value,
    to_yaml,
)

TEMPLATES = {
    "playbook.yml": "playbook.yml.j2",
    "stop.yml": "stop.yml.j2",
    "destroy.yml": "destroy.yml.j2",
    "inventory.yml": "inventory.yml.j2",
    "Containerfile": "Containerfile.j2",
    "README.md": "README.md.j2",
    ".ansible-lint": "ansible-lint.yml.j2",
}


def make_environment(templates: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters.update(
        shell_quote=shell_quote,
        systemd_quote=systemd_quote,
        systemd_value=systemd_value,
        systemd_env=systemd_env,
        docker_env=docker_env,
        docker_env_key=docker_env_key,
        json_quote=json_quote,
        to_yaml=to_yaml,
    )
    return env


def server_env(lock: Lockfile, host: HostLayout) -> dict[str, str]:
    """Environment of the server process: the lock's requirements plus a shared build's libs."""
    env = dict(sorted(lock.resolved.requirements.env.items()))
    if render_plan.shared_libs(lock):
        env["LD_LIBRARY_PATH"] = layout.lib_dir(lock, host)
    if lock.resolved.engine.name == "mlx-lm":
        env["HF_HUB_OFFLINE"] = "1"  # the snapshot is on disk: the server must not fetch one
    return env


def _engine_vars(lock: Lockfile, host: HostLayout) -> dict[str, Any]:
    e = lock.resolved.engine
    out: dict[str, Any] = {
        "name": e.name,
        "version": e.version,
        "backend": e.backend,
        "build_key": e.build_key,
        "source": e.source.model_dump(mode="json"),
        "source_subdir": e.source_subdir,
        "cmake_flags": list(e.cmake_flags),
        "targets": list(e.targets),
        "dir": layout.engine_dir(lock, host),
        "build_number": e.build_number,
        "build_packages": render_plan.BUILD_PACKAGES[e.backend],
        "build_commands": render_plan.BUILD_COMMANDS[e.backend],
        "shared_libs": render_plan.shared_libs(lock),
        "lib_dir": layout.lib_dir(lock, host),
        "server_binary": layout.server_binary(lock, host),
    }
    if e.vulkan_headers is not None:  # only Vulkan locks carry it: other trees stay as they were
        out["vulkan_headers"] = e.vulkan_headers.model_dump(mode="json")
    return out


def _draft_vars(lock: Lockfile, host: HostLayout) -> dict[str, Any] | None:
    """The speculative draft model's one file, when the lock has one."""
    draft = lock.resolved.speculative.draft
    if draft is None:
        return None
    a = draft.artefact
    return {"id": draft.id, "file": a.file, "url": a.url, "sha256": a.sha256,
            "sources": render_plan.fetch_sources(a),
            "path": layout.draft_path(lock, host)}  # fmt: skip


def _snapshot_vars(lock: Lockfile) -> dict[str, Any]:
    """An MLX model is a Hugging Face repo snapshot: the mlx role fetches repo at revision."""
    if lock.resolved.engine.name != "mlx-lm":
        return {}
    return {"repo": lock.resolved.model.repo, "revision": lock.resolved.model.revision}


def stack_vars(lock: Lockfile, host: HostLayout) -> dict[str, Any]:
    """The variables the static roles read. Everything comes from the lock."""
    r = lock.resolved
    model_path = layout.model_path(lock, host)
    macos = render_plan.is_macos(lock)
    return {
        "stackctl_stack": r.stack,
        "stackctl_service": r.service,
        "stackctl_layout": host.model_dump(mode="json"),
        "stackctl_host": render_plan.host_vars(lock),
        "stackctl_engine": _engine_vars(lock, host),
        "stackctl_model": {
            "id": r.model.id,
            "quant": r.model.quant,
            "artefact": r.model.artefact.model_dump(mode="json"),
            "path": model_path,
            "parts": render_plan.model_parts(lock, host, model_path),
            "draft": _draft_vars(lock, host),
            **_snapshot_vars(lock),
        },
        "stackctl_server": {
            "argv": layout.service_argv(lock, host),
            "api_key_file": layout.api_key_file(lock, host),
            "env": server_env(lock, host),
            "host": r.runtime.host,
            "port": r.runtime.port,
            "pid_file": layout.pid_file(lock, host),
            "log_file": layout.log_file(lock, host),
            "manager": "launchd" if macos else "systemd",
            "launchd_label": layout.launchd_label(lock),
            "image": layout.image_name(lock),
        },
    }


def _render(env: jinja2.Environment, template: str, context: dict[str, Any]) -> str:
    try:
        return env.get_template(template).render(context)
    except jinja2.TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f"{template}:{line}" if line else template
        raise RenderError(f"template {where}: {exc}") from None


def _role_files(roles: Path) -> list[RenderedFile]:
    """Static roles travel with the rendered tree, so it runs anywhere without stackctl."""
    files = []
    for path in sorted(p for p in roles.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts:
            continue
        mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
        files.append(
            RenderedFile(
                path=f"roles/{path.relative_to(roles).as_posix()}",
                content=path.read_text(encoding="utf-8"),
                mode=mode,
            )
        )
    return files


def _xml_safe(value: Any) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _xml_safe(item)
    elif isinstance(value, list):
        for item in value:
            _xml_safe(item)
    elif isinstance(value, str) and any(ord(c) < 32 and c not in "\t\n" for c in value):
        # XML 1.0 has no other control characters, and parsers normalise \r away
        raise RenderError(f"{value!r} has control characters a plist (XML 1.0) cannot carry")


def _plist(job: dict[str, Any], header: str) -> str:
    """plistlib's XML with the generated-file header as a comment after the declaration."""
    _xml_safe(job)
    text = plistlib.dumps(job, sort_keys=True).decode()
    declaration, rest = text.split("\n", 1)
    comment = header.replace("--", "- -")
    return f"{declaration}\n<!-- {comment} -->\n{rest}"


def launchd_plist(lock: Lockfile, variables: dict[str, Any], header: str) -> str:
    """The launchd job for macOS, by plistlib: XML escaping is the library's, not a template's."""
    server = variables["stackctl_server"]
    job: dict[str, Any] = {
        "Label": server["launchd_label"],
        "ProgramArguments": server["argv"],
        "UserName": variables["stackctl_layout"]["service_user"],
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 5,
        "ProcessType": "Interactive",
        "StandardOutPath": server["log_file"],
        "StandardErrorPath": server["log_file"],
        "SoftResourceLimits": {"NumberOfFiles": 65536},
    }
    if server["env"]:
        job["EnvironmentVariables"] = server["env"]
    return _plist(job, header)


def wired_limit_plist(lock: Lockfile, header: str) -> str:
    """A root LaunchDaemon that reapplies iogpu.wired_limit_mb at boot (the sysctl resets)."""
    mb = render_plan.wired_limit_mb(lock)
    job = {
        "Label": "org.stackctl.wired-limit",
        "ProgramArguments": ["/usr/sbin/sysctl", f"iogpu.wired_limit_mb={mb}"],
        "RunAtLoad": True,
    }
    return _plist(job, header)


API_KEY_SECRET = "stackctl-api-key"


def compose_file(lock: Lockfile, header: str) -> str:
    """compose.yaml for the image the Containerfile builds; structure by ruamel, not templates."""
    r = lock.resolved
    bind = r.runtime.host if r.runtime.host not in ("0.0.0.0", "::") else "0.0.0.0"
    service: dict[str, Any] = {
        "image": layout.image_name(lock),
        "build": {"context": ".", "dockerfile": "Containerfile"},
        "container_name": r.service,
        "restart": "unless-stopped",
        "ports": [f"{bind}:{r.runtime.port}:{r.runtime.port}"],
        # The server inside listens beyond loopback: its API key is a run-time secret
        # (mounted at /run/secrets/stackctl-api-key), never part of the image.
        "secrets": [API_KEY_SECRET],
    }
    devices = render_plan.container_devices(lock)
    if devices:
        service["devices"] = devices
    groups = render_plan.GPU_GROUPS.get(r.engine.backend)
    if groups:
        service["group_add"] = groups
    if r.requirements.env:
        service["environment"] = dict(sorted(r.requirements.env.items()))
    secrets = {API_KEY_SECRET: {"file": "./api-key"}}
    return f"# {header}\n" + to_yaml({"services": {r.service: service}, "secrets": secrets})


def _service_files(
    lock: Lockfile, env: jinja2.Environment, context: dict[str, Any]
) -> list[RenderedFile]:
    variables = context["vars"]
    service = lock.resolved.service
    argv = json.dumps(variables["stackctl_server"]["argv"], indent=2) + "\n"
    out = {f"files/{service}.argv.json": argv}
    if render_plan.is_macos(lock):
        out[f"files/{service}.plist"] = launchd_plist(lock, variables, context["header"])
        if lock.resolved.engine.backend == "metal":
            out["files/org.stackctl.wired-limit.plist"] = wired_limit_plist(lock, context["header"])
    else:
        out[f"files/{service}.service"] = _render(env, "systemd/service.j2", context)
        out[f"files/{service}.container"] = _render(env, "systemd/quadlet.j2", context)
        if lock.resolved.image is not None:  # a lock from before image pins: re-lock for one
            out["Containerfile"] = _render(env, "Containerfile.j2", context)
            out["compose.yaml"] = compose_file(lock, context["header"])
    return [RenderedFile(path=path, content=content) for path, content in out.items()]


def render_stack(
    lock: Lockfile,
    env: jinja2.Environment,
    *,
    roles: Path,
    lock_name: str,
    host: HostLayout | None = None,
) -> list[RenderedFile]:
    host = host or HostLayout()
    variables = stack_vars(lock, host)
    backend = lock.resolved.engine.backend
    context = {
        "lock": lock.model_dump(mode="json"),
        "vars": variables,
        "lock_name": lock_name,
        "header": f"generated by stackctl from {lock_name}; do not edit",
        "roles": render_plan.playbook_roles(lock),
        "plan": {
            "device_allow": render_plan.device_allow(lock),
            "groups": render_plan.GPU_GROUPS.get(backend, []),
            "container_devices": render_plan.container_devices(lock),
            "image_cmake_flags": render_plan.image_cmake_flags(lock),
            "host_needs": render_plan.host_needs(lock),
            "macos": render_plan.is_macos(lock),
        },
    }
    files = [
        RenderedFile(path=name, content=_render(env, tpl, context))
        for name, tpl in TEMPLATES.items()
        if name != "Containerfile"
    ]
    files.append(
        RenderedFile(
            path="group_vars/all/stackctl.yml",
            content=f"# {context['header']}\n" + to_yaml(variables),
        )
    )
    files += _service_files(lock, env, context)
    files.sort(key=lambda f: f.path)
    return files + _role_files(roles)


def write_tree(files: list[RenderedFile], root: Path) -> list[Path]:
    """Write a rendered tree, replacing what a previous render left there."""
    return replace_tree(root, [(f.path, f.content, f.mode) for f in files])
