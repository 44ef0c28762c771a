"""Pre-registered statistics of the powered evaluation, on per-prompt means of the first `seeds` samples.

Primary (fixed in advance, Holm-corrected over `primary_rates`): SIA@r beats random@r (at SIA's realised
rate). "Matches dense": some SIA rate in 20-40% is equivalent to dense within +-margin (TOST) while
adding <= 1/2 of dense's extra batch-1 time per token. Everything else is reported unadjusted, as
secondary: SIA vs random at other rates, the w = 0 controls, the exact guide, BoN, the second scorers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sparse_align.config import EvalConfig
from sparse_align.eval.arms import rate_name
from sparse_align.eval.stats import equivalence, holm_comparisons, paired, prompt_means


def _means(arm: dict[str, Any], seeds: int, key: str = "rewards", scorer: str | None = None) -> np.ndarray:
    grid = arm["scores"][scorer] if scorer else arm[key]
    return prompt_means([r[:seeds] for r in grid])


def _pair(arms: dict[str, Any], a: str, b: str, cfg: EvalConfig, scorer: str | None = None) -> dict[str, Any] | None:
    if a not in arms or b not in arms:
        return None
    res = paired(_means(arms[a], cfg.seeds, scorer=scorer), _means(arms[b], cfg.seeds, scorer=scorer),
                 cfg.bootstrap, cfg.seed)
    return {k: v for k, v in res.items() if k != "_boot"}


def secondary_pairs(cfg: EvalConfig) -> list[tuple[str, str]]:
    out = [(f"sia@{rate_name(r)}", f"random@{rate_name(r)}") for r in cfg.sia_rates if r not in cfg.primary_rates]
    out += [(f"sia@{rate_name(r)}", f"sia-w0@{rate_name(r)}") for r in cfg.w0_rates]
    out += [(f"sia-exact@{rate_name(r)}", f"random@{rate_name(r)}") for r in cfg.exact_rates]
    out += [(f"sia-exact@{rate_name(r)}", f"sia@{rate_name(r)}") for r in cfg.exact_rates]
    out += [("dense", "base"), ("dense", "dense-w0"), ("dense-exact", "dense"), ("posttrained", "base")]
    out += [(f"sia@{rate_name(r)}", "base") for r in cfg.sia_rates]
    return out


def analyse(arms: dict[str, Any], cfg: EvalConfig, timing: dict[str, Any] | None = None) -> dict[str, Any]:
    primary = {}
    for r in cfg.primary_rates:
        a, b = f"sia@{rate_name(r)}", f"random@{rate_name(r)}"
        if a in arms and b in arms:
            primary[f"{a} - {b}"] = paired(_means(arms[a], cfg.seeds), _means(arms[b], cfg.seeds), cfg.bootstrap,
                                           cfg.seed)
    primary = holm_comparisons(primary, cfg.alpha) if primary else {}
    secondary = {f"{a} - {b}": p for a, b in secondary_pairs(cfg) if (p := _pair(arms, a, b, cfg)) is not None}
    by_scorer = {s: {f"sia@{rate_name(r)} - random@{rate_name(r)}":
                     _pair(arms, f"sia@{rate_name(r)}", f"random@{rate_name(r)}", cfg, s) for r in cfg.primary_rates}
                 for s in next(iter(arms.values()), {}).get("scores", {})}
    matches = []
    dense_added = (timing or {}).get("dense", {}).get("added_vs_base")
    for name, arm in arms.items():
        if arm["family"] != "sia" or not 0.2 <= (arm.get("target_rate") or 0) <= 0.4 or "dense" not in arms:
            continue
        eq = equivalence(_means(arm, cfg.seeds), _means(arms["dense"], cfg.seeds), cfg.equivalence_margin,
                         cfg.alpha, cfg.bootstrap, cfg.seed)
        added = (timing or {}).get(name, {}).get("added_vs_base")
        time_ok = None if added is None or dense_added is None else added <= 0.5 * dense_added
        matches.append({"method": name, "steered_fraction": arm.get("steered_fraction"), **eq,
                        "added_s_per_token": added, "dense_added_s_per_token": dense_added, "time_ok": time_ok})
    return {"primary": primary, "secondary": secondary, "by_scorer": by_scorer, "matches_dense": matches,
            "verdict": {"beats_random": {k: v["significant"] for k, v in primary.items()},
                        "matches_dense_at_half_time": any(m["equivalent"] and m["time_ok"] for m in matches)},
            "n_prompts": len(next(iter(arms.values()))["rewards"]) if arms else 0, "seeds": cfg.seeds}
