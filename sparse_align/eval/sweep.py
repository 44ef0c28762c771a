"""The w sweep on TRAINING prompts (the eval prompts never tune anything): for SIA at each rate (1.0 =
dense) and each weight w, the teacher reward against KL per token (vs the base model) and against value
calls per token, on paired samples (w = 0 is truncation to the top-K alone)."""

from __future__ import annotations

from typing import Any

from sparse_align.config import SteerConfig, SteerEvalConfig, SweepConfig
from sparse_align.eval.metrics import generation_stats
from sparse_align.eval.paired import PairedContext, sample_paired, score_grid
from sparse_align.eval.stats import mean_ci, prompt_means


def run_sweep(ctx: PairedContext, cfg: SweepConfig, ev: SteerEvalConfig, taus: dict[float, float]) -> list[dict[str, Any]]:
    points = []
    for rate in cfg.rates:
        for w in cfg.weights:
            dense = rate >= 1.0
            steer = SteerConfig(mode="dense" if dense else "sia", tau=0.0 if dense else taus[rate], weight=w,
                                top_k=ev.top_k, max_new_tokens=ev.max_new_tokens, detector=ev.detector)
            gens = sample_paired(ctx, steer, range(cfg.seeds), desc=f"w={w:g} rate={rate:g}")
            rewards = score_grid(ctx.teacher, ctx.prompts, gens)
            stats = generation_stats([g for row in gens for g in row])
            points.append({"rate": rate, "weight": w, "reward_ci": mean_ci(prompt_means(rewards), ev.bootstrap),
                           "kl_per_token": stats["kl_per_token"], "value_calls_per_token": stats["value_calls_per_token"],
                           "steered_fraction": stats["steered_fraction"], "rewards": rewards})
    return points


def sweep_lines(points: list[dict[str, Any]]) -> list[str]:
    lines = ["| rate | w | reward [95% CI] | KL/token | value calls/token | steered |", "|---|---|---|---|---|---|"]
    for p in points:
        ci, label = p["reward_ci"], "dense" if p["rate"] >= 1 else f"{p['rate']:.0%}"
        lines.append(f"| {label} | {p['weight']:g} | "
                     f"{ci['mean']:.3f} [{ci['lo']:.3f}, {ci['hi']:.3f}] | {p['kl_per_token']:.3f} | "
                     f"{p['value_calls_per_token']:.2f} | {p['steered_fraction']:.2f} |")
    return lines
