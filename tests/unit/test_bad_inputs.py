"""A table of bad inputs across every command: each exits non-zero with one `error[code]` line
and a hint (or argparse's usage line), never a traceback, and writes nothing anywhere."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stackctl.cli import main
from stackctl.resources import stacks_dir

TINY = (stacks_dir() / "tiny-cpu.yaml").read_text()
GOOD_LOCK = "good.lock.yaml"


def _bomb() -> str:
    lines = ['a0: &a0 "lol"']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\nname: bomb\n"


FILES: dict[str, str | bytes] = {
    "bomb.yaml": _bomb(),
    "deep.yaml": "name: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep-block.yaml": "".join(f"{'  ' * i}k{i}:\n" for i in range(100)) + "  " * 100 + "v: 1\n",
    "self-alias.yaml": "name: &a [1, *a]\n",
    "nul.yaml": "name: tiny\x00\n",
    "huge-int.yaml": TINY.replace("context: 2048", "context: " + "9" * 6000),
    "unknown-key.yaml": TINY + "colour: blue\n",
    "context-word.yaml": TINY.replace("context: 2048", "context: big"),
    "negative-users.yaml": TINY.replace("users: 1", "users: -3"),
    "list.yaml": "- name: tiny\n",
    "empty.yaml": "",
    "latin1.yaml": b"name: caf\xe9\n",
    "oversize.yaml": "#" * (300 << 10) + "\nname: x\n",
    "duplicate.yaml": TINY + "users: 2\n",
    "syntax.yaml": "name: [unclosed\nworkload: chat\n",
    "port-text.yaml": TINY.replace("port: 8080", "port: 'eighty; rm -rf /'"),
    "port-range.yaml": TINY.replace("port: 8080", "port: 99999"),
    "host-inject.yaml": TINY.replace("host: 127.0.0.1", "host: '127.0.0.1 --api-key x'"),
    "pin-unknown.yaml": TINY.replace("model: gemma-3-270m", "model: no-such-model"),
    "name-template.yaml": TINY.replace("name: tiny-cpu", "name: \"{{ lookup('pipe', 'id') }}\""),
    "profile-list.yaml": "- cpu\n",
    "profile-unknown.yaml": "name: x\nflux_capacitor: 1\n",
    "profile-link.yaml": (Path(__file__).parent.parent / "data/profiles/cpu-x86-2core.yaml")
    .read_text()
    .replace(
        "accelerators: []", "accelerators:\n  - {vendor: nvidia, name: x, host_link: PCIe 4 x8}"
    ),
    "not-a-dir": "x",
    "truncated.gguf": b"GGUF\x03\x00\x00\x00\x01",
    "wrong-magic.gguf": b"GGML" + b"\x00" * 64,
    "empty-dir/.keep": "",
}


def _lock_variant(folder: Path, old: str, new: str, name: str) -> None:
    good = (folder / GOOD_LOCK).read_text()
    assert old in good
    (folder / name).write_text(good.replace(old, new, 1))


@pytest.fixture
def inputs(in_tmp: Path, cpu_profile: Path) -> Path:
    for name, content in FILES.items():
        path = in_tmp / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    good = in_tmp / "in" / "tiny-cpu.yaml"
    good.write_text(TINY)
    assert main(["lock", str(good), "--hardware", str(cpu_profile), "-o", f"in/{GOOD_LOCK}"]) == 0
    _lock_variant(in_tmp / "in", "port: 8080", "port: 8081", "edited.lock.yaml")
    _lock_variant(in_tmp / "in", "version: 1", "version: 99", "future.lock.yaml")
    shutil.copy(cpu_profile, in_tmp / "in" / "profile.yaml")
    return in_tmp


P = "--hardware=in/profile.yaml"
CASES: list[tuple[str, list[str]]] = [
    ("alias bomb stack", ["plan", "in/bomb.yaml", P]),
    ("flow-nested stack", ["plan", "in/deep.yaml", P]),
    ("block-nested stack", ["plan", "in/deep-block.yaml", P]),
    ("self alias", ["plan", "in/self-alias.yaml", P]),
    ("NUL byte", ["plan", "in/nul.yaml", P]),
    ("6000-digit integer", ["plan", "in/huge-int.yaml", P]),
    ("unknown key", ["plan", "in/unknown-key.yaml", P]),
    ("word for a number", ["plan", "in/context-word.yaml", P]),
    ("negative users", ["plan", "in/negative-users.yaml", P]),
    ("stack is a list", ["plan", "in/list.yaml", P]),
    ("empty stack", ["plan", "in/empty.yaml", P]),
    ("not UTF-8", ["plan", "in/latin1.yaml", P]),
    ("oversized stack", ["plan", "in/oversize.yaml", P]),
    ("duplicate key", ["plan", "in/duplicate.yaml", P]),
    ("YAML syntax", ["plan", "in/syntax.yaml", P]),
    ("port with shell text", ["plan", "in/port-text.yaml", P]),
    ("port out of range", ["plan", "in/port-range.yaml", P]),
    ("host with a flag in it", ["lock", "in/host-inject.yaml", P]),
    ("pinned model unknown", ["lock", "in/pin-unknown.yaml", P]),
    ("template in the name", ["lock", "in/name-template.yaml", P]),
    ("missing stack", ["plan", "in/nope.yaml", P]),
    ("stack is a folder", ["plan", "in/empty-dir.yaml", P]),
    ("lock from a bomb", ["lock", "in/bomb.yaml", P]),
    ("render from a bomb", ["render", "in/bomb.yaml", P, "-o", "out"]),
    ("apply from a bomb", ["apply", "in/bomb.yaml", P, "-y"]),
    ("hardware profile is a bomb", ["plan", "in/tiny-cpu.yaml", "--hardware", "in/bomb.yaml"]),
    ("hardware profile missing", ["plan", "in/tiny-cpu.yaml", "--hardware", "in/nope.yaml"]),
    ("hardware profile a list", ["plan", "in/tiny-cpu.yaml", "--hardware", "in/profile-list.yaml"]),
    ("hardware unknown key", ["lock", "in/tiny-cpu.yaml", "--hardware=in/profile-unknown.yaml"]),
    ("hardware link misspelt", ["plan", "in/tiny-cpu.yaml", "--hardware=in/profile-link.yaml"]),
    ("unknown GPU name", ["plan", "in/tiny-cpu.yaml", "--gpu", "NoSuchGPU 9000"]),
    ("host link misspelt", ["plan", "in/tiny-cpu.yaml", "--gpu", "RTX 4060", "--host-link", "4x8"]),
    (
        "host link for an iGPU",
        ["plan", "in/tiny-cpu.yaml", "--system", "DGX Spark", "--host-link", "PCIe 4.0 x4"],
    ),
    ("unknown system name", ["plan", "in/tiny-cpu.yaml", "--system", "no-such-box"]),
    ("negative RAM", ["plan", "in/tiny-cpu.yaml", "--cpu", "x", "--ram", "-5"]),
    ("workload not a choice", ["plan", "in/tiny-cpu.yaml", P, "--workload", "poetry"]),
    ("unknown command", ["frobnicate"]),
    ("lock --check on a missing lock", ["lock", "--check", "in/nope.lock.yaml"]),
    ("lock --check on a bomb", ["lock", "--check", "in/bomb.yaml"]),
    ("lock --check on an edited lock", ["lock", "--check", "in/edited.lock.yaml"]),
    ("lock from the future", ["lock", "--check", "in/future.lock.yaml"]),
    ("apply with a missing mirror", ["apply", "in/tiny-cpu.yaml", P, "--mirror", "in/nope", "-y"]),
    ("status of a missing lock", ["status", "--lock", "in/nope.lock.yaml"]),
    ("status of a deep lock", ["status", "--lock", "in/deep.yaml"]),
    ("stop with an edited lock", ["stop", "--lock", "in/edited.lock.yaml"]),
    ("destroy with a bomb lock", ["destroy", "--lock", "in/bomb.yaml"]),
    ("logs of a future lock", ["logs", "--lock", "in/future.lock.yaml"]),
    ("status with nothing applied", ["status", "in/nope.yaml"]),
    ("logs --apply before any apply", ["logs", "--apply"]),
    ("rollback with nothing applied", ["rollback"]),
    ("estimate a truncated GGUF", ["estimate", "--gguf", "in/truncated.gguf"]),
    ("estimate a non-GGUF", ["estimate", "--gguf", "in/wrong-magic.gguf"]),
    ("estimate a folder", ["estimate", "--gguf", "in/empty-dir"]),
    ("estimate an unknown model", ["estimate", "--model", "no-such-model"]),
    ("estimate a negative context", ["estimate", "--model", "gemma-3-270m", "--ctx", "-1"]),
    ("detect from a missing bundle", ["detect", "--from", "in/nope"]),
    ("detect from a file", ["detect", "--from", "in/not-a-dir"]),
]


def _snapshot(*roots: Path) -> dict[Path, tuple[int, int]]:
    return {
        path: (path.stat().st_size, path.stat().st_mtime_ns)
        for root in roots
        for path in root.rglob("*")
    }


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize(("what", "argv"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(
    what: str,
    argv: list[str],
    inputs: Path,
    state_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    before = _snapshot(inputs, state_dir)
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0, f"{what}: exit 0"
    assert "Traceback" not in err
    if "usage:" not in err:  # argparse's own message for a malformed command line
        errors = [line for line in err.splitlines() if line.startswith("error[")]
        assert len(errors) == 1, err
        assert "internal-error" not in errors[0], err
        assert "  hint: " in err, err
    assert _snapshot(inputs, state_dir) == before, f"{what} wrote files"
    assert not any(p.name.startswith(".") and p.suffix == ".tmp" for p in inputs.rglob("*"))
