"""Run one task file of a rendered tree's role with the real ansible-playbook on localhost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from stackctl.apply import ansible_playbook_path


def run_role_tasks(
    tree: Path, role: str, tasks: str, *, extra: list[str], env: dict[str, str], after: str = ""
) -> subprocess.CompletedProcess[str]:
    """`after`: more tasks (YAML, indented for the play's task list) that report what it set."""
    playbook = tree / f"only-{role}-{tasks}.yml"
    playbook.write_text(
        "- hosts: all\n  gather_facts: true\n  vars_files: [group_vars/all/stackctl.yml]\n"
        f"  tasks:\n    - ansible.builtin.include_role: {{name: {role}, tasks_from: {tasks}}}\n"
        + after
    )
    argv = [ansible_playbook_path(), "-i", "localhost,", "-c", "local", str(playbook),
            "-e", f"ansible_python_interpreter={sys.executable}", *extra]  # fmt: skip
    environment = {**os.environ, "ANSIBLE_ROLES_PATH": str(tree / "roles"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(argv, cwd=tree, env={**environment, **env}, capture_output=True,
                          text=True, timeout=900, check=False)  # fmt: skip
