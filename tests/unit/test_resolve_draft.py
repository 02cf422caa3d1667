"""Speculative decoding with a draft model: chosen where a pairing is in the catalog, it fits
beside the model and decodes faster; locked with its file, started with --spec-draft-model."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackctl.catalog import load_catalog
from stackctl.detect import declare_hardware
from stackctl.layout import draft_path, service_argv
from stackctl.lock import fill_fetched_pins, make_lockfile, read_lockfile, write_lockfile
from stackctl.models.hardware import HardwareProfile
from stackctl.models.lock import Lockfile
from stackctl.models.render import HostLayout
from stackctl.models.spec import StackSpec
from stackctl.render import stack_vars
from stackctl.resolve import Resolver, make_resolver
from stackctl.resources import catalog_dir

GOLDEN = Path(__file__).parents[2] / "lockfiles" / "rtx-3090x2-llama-draft.lock.yaml"


@pytest.fixture(scope="module")
def resolver() -> Resolver:
    return make_resolver(load_catalog(catalog_dir()))


def _two_3090s() -> HardwareProfile:
    return declare_hardware(gpus=["rtx 3090"], gpu_count=2, ram_gib=128)


def _llama_chat(users: int = 1) -> StackSpec:
    prefs = {"families": ["llama3"]}
    return StackSpec.model_validate(
        {"name": "t", "workload": "chat", "context": 8192, "users": users, "preferences": prefs}
    )


def test_a_draft_lifts_a_70b_over_the_floor(resolver: Resolver) -> None:
    result = resolver.resolve(_llama_chat(), _two_3090s())
    r = result.resolved
    assert r.model.id == "llama-3.1-70b"
    assert r.speculative.kind == "draft"
    assert r.speculative.draft is not None
    assert r.speculative.draft.artefact.file == "llama-3.2-1b-instruct-q8_0.gguf"
    args = r.runtime.server_args
    assert args[args.index("--spec-type") + 1] == "draft-simple"
    assert args[args.index("--spec-draft-n-max") + 1] == "5"
    est = result.chosen.estimate
    assert est is not None
    assert est.memory.draft_bytes > 0  # its weights, KV and compute count against the GPUs
    assert est.speed.tg_tps_plain is not None
    assert est.speed.tg_tps_plain < 20 <= r.predicted.tg_tps


def test_no_draft_above_four_users(resolver: Resolver) -> None:
    r = resolver.resolve(_llama_chat(users=8), _two_3090s()).resolved
    assert r.speculative.kind == "none"
    assert "--spec-type" not in r.runtime.server_args


def test_the_service_loads_the_draft_and_the_role_fetches_it() -> None:
    lock = read_lockfile(GOLDEN)
    host = HostLayout()
    path = draft_path(lock, host)
    assert path is not None
    # the draft file's sha256 is published (catalog/artefacts.yaml), so it has its own folder
    assert path.endswith("/ba345c83bf5cc679/llama-3.2-1b-instruct-q8_0.gguf")
    argv = service_argv(lock, host)
    assert argv[argv.index("--spec-draft-model") + 1] == path
    draft = stack_vars(lock, host)["stackctl_model"]["draft"]
    assert draft["path"] == path
    assert draft["url"].endswith("/llama-3.2-1b-instruct-q8_0.gguf")


def _with_unverified_draft(lock: Lockfile) -> Lockfile:
    """The golden lock with the draft's sha256 unknown, as a draft file without a published
    hash is locked."""
    r = lock.resolved
    draft = r.speculative.draft
    assert draft is not None
    pin = draft.artefact.model_copy(update={"sha256": None, "verified": False})
    speculative = r.speculative.model_copy(
        update={"draft": draft.model_copy(update={"artefact": pin})}
    )
    return make_lockfile(r.model_copy(update={"speculative": speculative}), lock.inputs)


def test_first_fetch_fills_the_draft_pin(tmp_path: Path) -> None:
    lock = _with_unverified_draft(read_lockfile(GOLDEN))
    sha = "ab" * 32
    filled = fill_fetched_pins(lock, {"draft": sha}, "rig1")
    draft = filled.resolved.speculative.draft
    assert draft is not None
    assert draft.artefact.sha256 == sha
    assert draft.artefact.verified
    write_lockfile(filled, tmp_path / "l.yaml")
    assert read_lockfile(tmp_path / "l.yaml") == filled  # the content hash was renewed


def test_a_published_draft_hash_is_never_replaced_by_a_fetch() -> None:
    lock = read_lockfile(GOLDEN)
    draft = lock.resolved.speculative.draft
    assert draft is not None
    assert draft.artefact.verified
    filled = fill_fetched_pins(lock, {"draft": "ab" * 32}, "rig1")
    kept = filled.resolved.speculative.draft
    assert kept is not None
    assert kept.artefact.sha256 == draft.artefact.sha256
