"""Statistics of the powered evaluation. The unit is the PROMPT: per-prompt means over seeds, paired
across arms (same prompts, same per-position noise), bootstrapped over prompts.

- paired comparisons: percentile bootstrap of the mean per-prompt difference; one-sided p-value
  (1 + #{boot mean <= 0}) / (B + 1) for "a > b";
- the comparisons fixed in advance are Holm-corrected: sorted p_(i) is tested at alpha / (m - i); the
  matching lower confidence bound is the bootstrap's alpha / (m - i) quantile (> 0 <=> rejected);
- "matches dense": equivalence (TOST) — the 1 - 2 alpha CI of the difference lies inside +-margin;
- Best-of-N from a pool of M samples: the exact mean over all N-subsets of the pool (no resampling noise).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb

import numpy as np


def prompt_means(rewards: Sequence[Sequence[float]]) -> np.ndarray:
    """[P] per-prompt means of [P][S] rewards (one row per prompt, one entry per seed)."""
    return np.array([float(np.mean(r)) for r in rewards])


def boot_means(x: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Means of n_boot resamples (with replacement) of the entries of x."""
    rng = np.random.default_rng(seed)
    return x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(1)


def mean_ci(x: np.ndarray, n_boot: int = 10_000, level: float = 0.95, seed: int = 0) -> dict[str, float]:
    b = boot_means(np.asarray(x, dtype=float), n_boot, seed)
    tail = (1 - level) / 2
    return {"mean": float(np.mean(x)), "lo": float(np.quantile(b, tail)), "hi": float(np.quantile(b, 1 - tail))}


def paired(a: np.ndarray, b: np.ndarray, n_boot: int = 10_000, seed: int = 0) -> dict[str, object]:
    """a - b per prompt: mean, 95% CI, one-sided p for a > b, and the bootstrap means (for Holm bounds)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    boot = boot_means(d, n_boot, seed)
    return {"diff": float(d.mean()), "lo": float(np.quantile(boot, 0.025)), "hi": float(np.quantile(boot, 0.975)),
            "p_one_sided": float((1 + np.sum(boot <= 0)) / (n_boot + 1)), "n_prompts": len(d), "_boot": boot}


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def holm_comparisons(tests: dict[str, dict[str, object]], alpha: float) -> dict[str, dict[str, object]]:
    """Add Holm's adjusted p, step level, lower bound at that level, and the decision to each test."""
    names = list(tests)
    adj = holm([float(tests[n]["p_one_sided"]) for n in names])
    order = sorted(names, key=lambda n: float(tests[n]["p_one_sided"]))
    out, still = {}, True
    for rank, name in enumerate(order):
        level = alpha / (len(names) - rank)
        t = {k: v for k, v in tests[name].items() if k != "_boot"}
        t["holm_level"] = level
        t["holm_lower"] = float(np.quantile(tests[name]["_boot"], level))
        still = still and float(t["p_one_sided"]) <= level  # Holm stops at the first non-rejection
        t["p_holm"] = adj[names.index(name)]
        t["significant"] = still
        out[name] = t
    return {n: out[n] for n in names}


def equivalence(a: np.ndarray, b: np.ndarray, margin: float, alpha: float = 0.05, n_boot: int = 10_000,
                seed: int = 0) -> dict[str, float | bool]:
    """TOST by the bootstrap: a and b are equivalent when the 1 - 2 alpha CI of a - b is inside +-margin."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    boot = boot_means(d, n_boot, seed)
    lo, hi = float(np.quantile(boot, alpha)), float(np.quantile(boot, 1 - alpha))
    return {"diff": float(d.mean()), "lo": lo, "hi": hi, "margin": margin, "equivalent": -margin < lo and hi < margin}


def best_of_n_expected(rewards: Sequence[float], rank_scores: Sequence[float], n: int) -> float:
    """E[reward of the top-ranked of n samples drawn without replacement from the pool], exactly: with the
    pool sorted by rank score (ties: the later index wins), item i (1-based) is chosen in C(i-1, n-1) of
    the C(M, n) subsets."""
    m = len(rewards)
    if not 1 <= n <= m:
        raise ValueError(f"best of {n} needs a pool of at least {n}, got {m}")
    order = sorted(range(m), key=lambda i: (rank_scores[i], i))
    return sum(comb(pos, n - 1) * rewards[i] for pos, i in enumerate(order)) / comb(m, n)
