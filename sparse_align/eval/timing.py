"""Interleaved wall-clock comparison at batch 1: per prompt, every method runs back to back in turn,
so load changes on a shared machine hit all methods alike (a method-after-method run cannot promise
that). Batch 1 is the latency a single request sees; it is what the target's time criterion uses."""

from __future__ import annotations

import statistics
from typing import Any

import torch

from sparse_align.config import SteerConfig, SteerEvalConfig
from sparse_align.eval.tasks import prompt_ids, split_prompts
from sparse_align.steer.decode import generate_steered
from sparse_align.steer.gate import SteerGate


def timing_methods(cfg: SteerEvalConfig, taus: dict[float, float], random_rates: dict[float, float] | None = None,
                   max_rate: float = 1.0) -> dict[str, SteerConfig]:
    """base, dense, sia@r (global tau), random@r (at SIA's realised rate if given), sia-prompt@r."""
    random_rates = random_rates or {}
    methods = {"base": SteerConfig(mode="base"), "dense": SteerConfig(mode="dense")}
    for rate, tau in sorted(taus.items()):
        if rate <= max_rate and rate in cfg.sia_rates:
            methods[f"sia@{rate:.0%}"] = SteerConfig(mode="sia", tau=tau)
            methods[f"random@{rate:.0%}"] = SteerConfig(mode="random", random_rate=random_rates.get(rate, rate))
    for rate in cfg.prompt_rates:
        if rate <= max_rate:
            methods[f"sia-prompt@{rate:.0%}"] = SteerConfig(mode="sia", tau=taus[rate], target_rate=rate)
    return {k: v.model_copy(update={"top_k": cfg.top_k, "weight": cfg.weight, "max_new_tokens": cfg.max_new_tokens,
                                    "detector": cfg.detector})
            for k, v in methods.items()}


def interleaved_timing(model: Any, tok: Any, value_model: Any, cfg: SteerEvalConfig, taus: dict[float, float],
                       rounds: int = 1, *, methods: dict[str, SteerConfig] | None = None,
                       num_prompts: int | None = None) -> dict[str, Any]:
    methods = methods or timing_methods(cfg, taus, max_rate=0.4)
    per_token: dict[str, list[float]] = {k: [] for k in methods}
    steered: dict[str, list[float]] = {k: [] for k in methods}
    for r in range(rounds):
        for i, prompt in enumerate(split_prompts(cfg.task, "eval", num_prompts or cfg.num_prompts)):
            ids = prompt_ids(tok, prompt, cfg.task)
            for name, steer in methods.items():
                seed = cfg.seed * 1_000_003 + i * 101 + r
                g = generate_steered(model, tok, ids, steer, value_model, generator=torch.Generator().manual_seed(seed),
                                     gate=SteerGate(steer, seed=seed))
                per_token[name].append(g.wall_s / max(len(g.records), 1))
                steered[name].append(g.steered_fraction)
    base = per_token["base"]
    # paired: per prompt (and round) the method's s/token minus base's on the same prompt, then the median
    return {name: {"median_s_per_token": statistics.median(v), "mean_s_per_token": statistics.mean(v),
                   "added_vs_base": statistics.median([a - b for a, b in zip(v, base)]),
                   "steered_fraction": statistics.mean(steered[name]), "samples": len(v)}
            for name, v in per_token.items()}
