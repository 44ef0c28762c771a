"""Summary statistics for one method's generations."""

from __future__ import annotations

import math
from collections.abc import Sequence

from sparse_align.steer.decode import SteeredGeneration


def mean_ci(values: Sequence[float], z: float = 1.96) -> tuple[float, float]:
    """(mean, half-width of the normal-approximation 95% confidence interval)."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    mean = sum(values) / n
    if n == 1:
        return mean, float("nan")
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, z * math.sqrt(var / n)


def distinct_n(token_lists: Sequence[Sequence[int]], n: int) -> float:
    """Unique n-grams / total n-grams over all outputs of a method (0 when there are none)."""
    grams = [tuple(toks[i:i + n]) for toks in token_lists for i in range(len(toks) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def generation_stats(gens: Sequence[SteeredGeneration]) -> dict[str, float]:
    """Steered fraction, value calls/token, perplexity and KL (per token) vs the base model, speed."""
    records = [r for g in gens for r in g.records]
    n_tok = max(len(records), 1)
    wall = sum(g.wall_s for g in gens)
    return {
        "tokens": len(records),
        "steered_fraction": sum(r.steered for r in records) / n_tok,
        "value_calls_per_token": sum(r.value_calls for r in records) / n_tok,
        "ppl_base": math.exp(-sum(r.logp_base for r in records) / n_tok),
        "kl_per_token": sum(r.logp_used - r.logp_base for r in records) / n_tok,
        "gen_wall_s": wall,
        "tokens_per_s": len(records) / wall if wall > 0 else float("nan"),
        "distinct_1": distinct_n([g.token_ids for g in gens], 1),
        "distinct_2": distinct_n([g.token_ids for g in gens], 2),
    }
