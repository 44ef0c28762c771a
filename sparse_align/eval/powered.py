"""The powered evaluation: every arm on >= 100 held-out prompts x >= 8 paired seeds (eval/paired.py),
tau calibrated on training prompts, Best-of-N ranked by the teacher and by V, batch-1 latency of the
cheap arms, then the pre-registered statistics (eval/analysis.py).

Each finished arm is written to a partial file at once (`on_arm`); a rerun with the same config and
value model reuses the arms found there, so a long run that dies loses at most the arm in progress.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.logging import get_logger
from sparse_align.config import SteerConfig, SteerEvalConfig
from sparse_align.eval.analysis import analyse
from sparse_align.eval.arms import Arm, calibration_rates, plan_arms, rate_name
from sparse_align.eval.metrics import generation_stats
from sparse_align.eval.paired import PairedContext, sample_paired, score_grid, value_grid
from sparse_align.eval.stats import best_of_n_expected, mean_ci, prompt_means
from sparse_align.eval.timing import interleaved_timing, timing_methods
from sparse_align.rewards.base import RewardModel
from sparse_align.steer.calibrate import tau_for_rate

log = get_logger("sparse_align.powered")


@dataclass
class PoweredContext:
    paired: PairedContext  # eval prompts
    calib: PairedContext  # training prompts for tau
    cfg: SteerEvalConfig
    scorers: dict[str, RewardModel] = field(default_factory=dict)
    posttrained: Any = None  # the post-trained stand-in model, for the `posttrained` arm
    state: dict[str, Any] = field(default_factory=dict)  # {"taus": ..., "arms": {...}} (resumed or fresh)
    on_arm: Callable[[dict[str, Any]], None] | None = None


def calibrate_taus(calib: PairedContext, c: SteerEvalConfig, rates: list[float]) -> dict[str, float]:
    """Global tau per target rate: quantiles of the detector's scores under base sampling (train prompts)."""
    steer = SteerConfig(mode="base", top_k=c.top_k, max_new_tokens=c.max_new_tokens, detector=c.detector)
    gens = sample_paired(calib, steer, range(1), guide="none", desc="calibrate tau")
    scores = [r.entropy for row in gens for g in row for r in g.records]  # the configured detector's score
    return {str(r): tau_for_rate(scores, r) for r in rates}


def _pool_needs_values(ctx: PoweredContext, arm: Arm) -> bool:
    return ctx.paired.value_model is not None and any(
        a.ranker == "value" and a.pool == arm.name for a in plan_arms(ctx.cfg, _taus(ctx)))


def _taus(ctx: PoweredContext) -> dict[float, float]:
    return {float(r): t for r, t in ctx.state["taus"].items()}


def decode_arm(ctx: PoweredContext, arm: Arm) -> dict[str, Any]:
    steer = arm.steer
    if arm.family == "random":  # random gating at SIA's realised rate: the same steering budget
        realised = ctx.state["arms"][f"sia@{rate_name(arm.rate)}"]["steered_fraction"]
        steer = steer.model_copy(update={"random_rate": realised})
    model = ctx.posttrained if arm.family == "posttrained" else None
    if arm.family == "posttrained" and model is None:
        raise ValueError("the posttrained arm needs the post-trained model (python -m sparse_align posttrain)")
    gens = sample_paired(ctx.paired, steer, range(arm.seeds), guide=arm.guide, model=model, desc=arm.name)
    prompts = ctx.paired.prompts
    res: dict[str, Any] = {**arm.info(), "random_rate": steer.random_rate if steer.mode == "random" else None,
                           "seeds": arm.seeds, "rewards": score_grid(ctx.paired.teacher, prompts, gens),
                           "scores": {n: score_grid(s, prompts, gens) for n, s in ctx.scorers.items()}}
    if _pool_needs_values(ctx, arm):
        res["values"] = value_grid(ctx.paired.value_model, gens)
    res.update(generation_stats([g for row in gens for g in row[:ctx.cfg.seeds]]))
    if model is not None:  # its records' "base" log-probs are the post-trained model's own: no KL vs base here
        res["kl_per_token"] = res["ppl_base"] = None
    res["examples"] = [row[0].text for row in gens[:3]]
    return res


def best_of_arm(ctx: PoweredContext, arm: Arm) -> dict[str, Any]:
    pool = ctx.state["arms"][arm.pool]
    key = "rewards" if arm.ranker == "teacher" else "values"
    if key not in pool:
        raise ValueError(f"{arm.name}: pool arm {arm.pool} has no '{key}'")
    res: dict[str, Any] = {**arm.info(), "seeds": 1}
    res["rewards"] = [[best_of_n_expected(r, k, arm.n)] for r, k in zip(pool["rewards"], pool[key])]
    res["scores"] = {n: [[best_of_n_expected(r, k, arm.n)] for r, k in zip(grid, pool[key])]
                     for n, grid in pool["scores"].items()}
    # cost: n samples of the pool per output, plus n value calls when V ranks
    for stat in ("steered_fraction", "kl_per_token", "ppl_base"):
        res[stat] = pool.get(stat)
    res["value_calls_per_token"] = (pool.get("value_calls_per_token") or 0.0) * arm.n
    res["samples_per_output"] = arm.n
    return res


def run_powered(ctx: PoweredContext) -> dict[str, Any]:
    if not set(ctx.cfg.primary_rates) <= set(ctx.cfg.sia_rates):  # a pre-registered test must have its arms
        raise ValueError(f"primary_rates {ctx.cfg.primary_rates} must be among sia_rates {ctx.cfg.sia_rates}")
    ctx.state.setdefault("arms", {})
    if "taus" not in ctx.state:
        ctx.state["taus"] = calibrate_taus(ctx.calib, ctx.cfg, calibration_rates(ctx.cfg))
    log.info("tau per target rate (%s): %s", ctx.cfg.detector, ctx.state["taus"])
    for arm in plan_arms(ctx.cfg, _taus(ctx)):
        if arm.name in ctx.state["arms"]:
            continue
        res = decode_arm(ctx, arm) if arm.steer is not None else best_of_arm(ctx, arm)
        res["reward_ci"] = mean_ci(prompt_means([r[:ctx.cfg.seeds] for r in res["rewards"]]), ctx.cfg.bootstrap)
        ctx.state["arms"][arm.name] = res
        log.info("%s: reward %.3f [%.3f, %.3f], steered %s", arm.name, res["reward_ci"]["mean"],
                 res["reward_ci"]["lo"], res["reward_ci"]["hi"], res.get("steered_fraction"))
        if ctx.on_arm is not None:
            ctx.on_arm(ctx.state)
    if ctx.cfg.timing_prompts > 0 and "timing" not in ctx.state:
        ctx.state["timing"] = batch1_timing(ctx)
        if ctx.on_arm is not None:
            ctx.on_arm(ctx.state)
    timing = ctx.state.get("timing")
    return {"taus": ctx.state["taus"], "arms": ctx.state["arms"], "timing": timing,
            "analysis": analyse(ctx.state["arms"], ctx.cfg, timing)}


def batch1_timing(ctx: PoweredContext) -> dict[str, Any]:
    """Batch-1 latency of base, dense, SIA and random up to `timing_max_rate`, interleaved per prompt."""
    realised = {a["target_rate"]: a["random_rate"] for a in ctx.state["arms"].values() if a["family"] == "random"}
    methods = timing_methods(ctx.cfg, _taus(ctx), realised, max_rate=ctx.cfg.timing_max_rate)
    p = ctx.paired
    return interleaved_timing(p.model, p.tokenizer, p.value_model, ctx.cfg, _taus(ctx), methods=methods,
                              num_prompts=ctx.cfg.timing_prompts)
