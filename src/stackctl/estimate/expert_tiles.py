"""Work wasted by the routed-expert matmuls of one prefill ubatch.

llama.cpp multiplies each expert's weights by the tokens routed to it in tiles of token
columns, so an expert that receives n tokens costs ceil(n / tile) tiles. The tokens an expert
receives are not the mean share of the ubatch: each token picks its k of E experts, so one
expert's count is Binomial(tokens, k / E) (uniform routing; ASSUMPTION: real routers are less
even, which wastes more). Taking the mean alone says 64 tokens per expert fill a 64-column tile
exactly; about half the experts then get more than 64 and pay a second tile.

The tile is one figure for every backend, an effective one. The pinned build's kernels differ
(b11434): Metal's kernel_mul_mm_id runs 32 token columns per threadgroup (ggml-metal-ops.cpp);
CUDA's MMQ picks its width, 8 to 128 in steps of 8, to fit the mean tokens per expert
(mmq.cu ncols_opt, mmq.cuh mul_mat_q_switch_J), and a narrow tile reuses each weight for fewer
columns, so it runs slower per column; Vulkan chooses among fixed warp tiles. 64 is the figure
assumed before the binomial count came in; of 48, 64 and 96 it also predicts held-out public
prefill rows best (benchmarks/speed_vs_public.py), the per-backend expert efficiency taking up
the rest.
"""

from __future__ import annotations

import functools
import math

# Token columns per routed-expert tile (ASSUMPTION, an effective figure: see above). 512 tokens
# x 8 of 256 experts = 16 per expert fill a quarter of a tile. This is why Qwen3.6-35B-A3B (256
# experts) prefills at about half the rate of gpt-oss-20b (32 experts) for the same active ops
# on every public box.
EXPERT_TILE = 64
# Counts this many standard deviations from the mean carry no probability worth summing.
_TAIL_SDS = 12.0


@functools.lru_cache(maxsize=4096)
def tile_padding(tokens: int, share: float, tile: int = EXPERT_TILE) -> float:
    """Work done / work needed (>= 1) when `tokens` tokens each route to an expert with
    probability `share`: E[ceil(n / tile)] x tile / E[n] for n ~ Binomial(tokens, share)."""
    mean = tokens * share
    if tokens <= 0 or mean <= 0:
        return 1.0
    if share >= 1.0:
        return math.ceil(tokens / tile) * tile / tokens
    sd = math.sqrt(mean * (1.0 - share))
    low = max(1, math.floor(mean - _TAIL_SDS * sd))
    high = min(tokens, math.ceil(mean + _TAIL_SDS * sd))
    log_p, log_q = math.log(share), math.log1p(-share)
    log_all = math.lgamma(tokens + 1)
    tiles = 0.0
    for n in range(low, high + 1):
        log_pmf = (
            log_all - math.lgamma(n + 1) - math.lgamma(tokens - n + 1)
            + n * log_p + (tokens - n) * log_q
        )  # fmt: skip
        tiles += math.exp(log_pmf) * math.ceil(n / tile)
    return max(1.0, tiles * tile / mean)
