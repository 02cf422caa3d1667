"""A deliberately broken model for check-output: the real Gemma 3 270M file with every
tensor's rows shuffled (seeded, so the same input gives the same file and sha256).

The header and each quantised block stay valid, so llama.cpp loads the file and answers, but
the weights are scrambled and the answers are garbage.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
from gguf import GGUFReader

SEED = 11


def write_scrambled(real: Path, out: Path) -> str:
    """Copy `real` to `out`, shuffle each tensor's rows in place; return the new sha256."""
    shutil.copyfile(real, out)
    reader = GGUFReader(out, "r+")
    rng = np.random.default_rng(SEED)
    for tensor in reader.tensors:
        data = tensor.data
        if data.shape[0] > 1:
            data[...] = data[rng.permutation(data.shape[0])]
        else:
            flat = data.reshape(-1)
            flat[...] = flat[rng.permutation(flat.shape[0])]
    reader.data.flush()
    del reader
    return hashlib.sha256(out.read_bytes()).hexdigest()
