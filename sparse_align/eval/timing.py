"""Interleaved wall-clock comparison: per prompt, every method runs back to back in turn, so load
changes on a shared machine hit all methods alike (the sequential evaluation cannot promise that)."""

from __future__ import annotations

import statistics
from typing import Any

import torch

from sparse_align.config import EvalConfig, SteerConfig
from sparse_align.eval.tasks import split_prompts
from sparse_align.steer.decode import generate_steered, render_prompt
from sparse_align.steer.gate import SteerGate


def interleaved_timing(model: Any, tok: Any, value_model: Any, cfg: EvalConfig, taus: dict[float, float],
                       rounds: int = 1) -> dict[str, Any]:
    methods = {"base": SteerConfig(mode="base"), "dense": SteerConfig(mode="dense")}
    for rate, tau in sorted(taus.items()):
        if rate <= 0.4:
            methods[f"sia@{rate:.0%}"] = SteerConfig(mode="sia", tau=tau)
            methods[f"random@{rate:.0%}"] = SteerConfig(mode="random", random_rate=rate)
    methods = {k: v.model_copy(update={"top_k": cfg.top_k, "weight": cfg.weight,
                                       "max_new_tokens": cfg.max_new_tokens}) for k, v in methods.items()}
    per_token: dict[str, list[float]] = {k: [] for k in methods}
    steered: dict[str, list[float]] = {k: [] for k in methods}
    for r in range(rounds):
        for i, prompt in enumerate(split_prompts(cfg.task, "eval", cfg.num_prompts)):
            ids = render_prompt(tok, prompt)
            for name, steer in methods.items():
                seed = cfg.seed * 1_000_003 + i * 101 + r
                g = generate_steered(model, tok, ids, steer, value_model, generator=torch.Generator().manual_seed(seed),
                                     gate=SteerGate(steer, seed=seed))
                per_token[name].append(g.wall_s / max(len(g.records), 1))
                steered[name].append(g.steered_fraction)
    base = statistics.median(per_token["base"])
    return {name: {"median_s_per_token": statistics.median(v), "added_vs_base": statistics.median(v) - base,
                   "steered_fraction": statistics.mean(steered[name]), "samples": len(v)}
            for name, v in per_token.items()}
