"""Work wasted by the routed-expert matmuls of one prefill ubatch.

llama.cpp multiplies each expert's weights by the tokens routed to it in tiles of a fixed
number of token columns, so an expert that receives n tokens costs ceil(n / tile) tiles. The
tokens an expert receives are not the mean share of the ubatch: each token picks its k of E
experts, so one expert's count is Binomial(tokens, k / E) (uniform routing; ASSUMPTION: real
routers are less even, which wastes more). Taking the mean alone says 64 tokens per expert fill
a 64-column tile exactly; about half the experts then get more than 64 and pay a second tile.
"""

from __future__ import annotations

import functools
import math

# Routed-expert matmuls in prefill run on tiles of this many tokens per expert (llama.cpp's
# quantised matmul kernels tile 64-128 columns; ASSUMPTION: 64). 512 tokens x 8 of 256 experts
# = 16 per expert fill a quarter of a tile. This is why Qwen3.6-35B-A3B (256 experts) prefills
# at about half the rate of gpt-oss-20b (32 experts) for the same active ops on every public box.
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
    tiles = 0.0
    for n in range(low, high + 1):
        log_pmf = (
            math.lgamma(tokens + 1) - math.lgamma(n + 1) - math.lgamma(tokens - n + 1)
            + n * log_p + (tokens - n) * log_q
        )  # fmt: skip
        tiles += math.exp(log_pmf) * math.ceil(n / tile)
    return max(1.0, tiles * tile / mean)
