"""Every catalog model has a file the lock can pin, and every figure about a file says where it
is from (issue 10): repository and file, a size with its basis, a revision that is a commit or
a note saying why not, and a sha256 with its source or none (unverified until the first fetch).

These walk the real catalog/artefacts.yaml and catalog/models.yaml."""

from __future__ import annotations

import re

import pytest

from stackctl.catalog import load_catalog
from stackctl.estimate import load_estimate_catalog
from stackctl.models.catalog import ModelArtefact
from stackctl.resources import catalog_dir
from stackctl.yamlio import read_yaml

COMMIT = re.compile(r"^[0-9a-f]{40}$")
LOCK_BUDGET_BYTES = 512 * 10**9  # the largest box issue 10 names: 512 GB of unified memory
LOW_BIT = 4.0  # bits per weight: the dynamic low-bit quants people run on 128-512 GB boxes


def _artefacts() -> list[ModelArtefact]:
    return load_catalog(catalog_dir()).artefacts


def _label(a: ModelArtefact) -> str:
    return f"{a.model} {a.quant}"


def _problems(a: ModelArtefact) -> list[str]:
    """What keeps `a` from being lockable; empty when the lock can pin it with every figure
    sourced."""
    found: list[str] = []
    if not a.repo or not a.file or not a.url.endswith(a.file):
        found.append("repository and file")
    if not a.size or a.size_basis is None or not a.size_source:
        found.append("a size with its basis and source")
    if not a.revision or (not COMMIT.match(a.revision) and not a.revision_note):
        found.append("a commit, or a note saying why the revision is not one")
    if a.sha256 is not None and not a.sha256_source:
        found.append("the source of its sha256")
    if not a.origin:
        found.append("an origin")
    return found


def test_every_catalog_model_has_a_lockable_file() -> None:
    files = _artefacts()
    models = load_estimate_catalog(catalog_dir()).models
    missing = {
        model_id: [_problems(a) for a in files if a.model == model_id] or [["no file at all"]]
        for model_id in models
        if not any(a.model == model_id and not _problems(a) for a in files)
    }
    assert not missing, f"models without a lockable file (each file's gaps): {missing}"


@pytest.mark.parametrize("a", _artefacts(), ids=_label)
def test_every_file_states_its_figures_and_their_sources(a: ModelArtefact) -> None:
    if a.size is None:
        # a second file of a model may lack a size, but says why (and the lock records it)
        assert a.size_basis is None, _label(a)
        assert a.size_source, _label(a)
        assert "unknown" in a.size_source, _label(a)
    else:
        assert a.size > 0, _label(a)
        assert a.size_basis, _label(a)
        assert a.size_source, _label(a)
    if a.size_basis == "derived":
        # a derived size carries its formula: the figure itself appears in it
        assert "derived" in (a.size_source or ""), _label(a)
        assert f"{a.size:,}" in (a.size_source or ""), _label(a)
    if a.revision and COMMIT.match(a.revision):
        # an MLX snapshot is the whole repo: its url is the repo's page and the role downloads
        # it with --revision; a single file resolves at the commit
        if a.engine != "mlx-lm":
            assert f"/resolve/{a.revision}/" in a.url, f"{_label(a)}: url not at the pinned commit"
    else:
        assert a.revision_note, f"{_label(a)}: revision {a.revision} without a note why"
    assert (a.sha256 is None) == (a.sha256_source is None), _label(a)
    if a.parts > 1:
        assert f"-00001-of-{a.parts:05d}" in a.file, f"{_label(a)}: first of {a.parts} parts"


def test_cited_sources_exist_and_every_source_is_cited() -> None:
    raw = read_yaml(catalog_dir() / "artefacts.yaml")
    ids = set(raw["sources"])
    cited = " ".join(f"{a.size_source} {a.sha256_source}" for a in _artefacts())
    assert all(re.search(rf"\b{re.escape(i)}\b", cited) for i in ids), "a source no file cites"
    for a in _artefacts():
        if a.sha256_source:
            names_one = any(re.search(rf"\b{re.escape(i)}\b", a.sha256_source) for i in ids)
            assert names_one or "PyPI" in a.sha256_source, f"{_label(a)}: sha256 from where?"


def test_every_200b_model_has_a_sized_low_bit_file_for_a_512_gb_box() -> None:
    """The open frontier comes with the quants people run on 128-512 GB boxes: a dynamic (or
    otherwise mixed) low-bit file below 4 bits per weight that fits 512 GB."""
    models = load_estimate_catalog(catalog_dir()).models
    frontier = [m for m in models.values() if (m.params_total or 0) >= 200]
    assert {"kimi-k2", "deepseek-v3", "glm-4.6", "qwen3-235b-a22b", "minimax-m2.7"} <= {
        m.id for m in frontier
    }
    for m in frontier:
        assert m.params_total is not None
        bits = [
            a.size * 8 / (m.params_total * 1e9)
            for a in _artefacts()
            if a.model == m.id and a.size and a.size <= LOCK_BUDGET_BYTES
        ]
        assert bits, f"{m.id}: no sized file within {LOCK_BUDGET_BYTES} bytes"
        assert min(bits) < LOW_BIT, f"{m.id}: bits per weight of its files {bits}"
