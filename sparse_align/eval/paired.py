"""Paired sampling for the powered evaluation, the w sweep and the junction measurement.

Sample (prompt i, seed s) of EVERY method draws its token at response position t with the same Gumbel
noise, keyed by (eval seed, split, i, s, t) (steer/noise.py), and random gating with a gate seeded by the
same key: so methods differ only where their distributions differ, and differences are paired.
Sequences are decoded as ragged batches (steer/batch_decode.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from runtime.logging import progress
from sparse_align.config import SteerConfig
from sparse_align.rewards.base import RewardModel
from sparse_align.steer.batch_decode import generate_steered_batch
from sparse_align.steer.decode import SteeredGeneration
from sparse_align.steer.gate import SteerGate
from sparse_align.steer.noise import SharedNoise, noise_seed

SPLIT_TAG = {"eval": 1, "train": 2}


@dataclass
class PairedContext:
    model: Any
    tokenizer: Any
    value_model: Any  # ValueModel or None (base-only runs)
    teacher: RewardModel
    prompts: list[str]
    prompts_ids: list[list[int]]
    split: str = "eval"
    seed: int = 0
    batch_rows: int = 16


class ExactGuide:
    """The exact one-token guide: V(c) = teacher(response so far + c), for the rows of one batch."""

    def __init__(self, teacher: RewardModel, tokenizer: Any, prompts: list[str]):
        self.teacher, self.tokenizer, self.prompts = teacher, tokenizer, prompts

    def __call__(self, b: int, tokens: list[int], cands: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        texts = [self.tokenizer.decode(tokens + [c], skip_special_tokens=True) for c in cands.tolist()]
        return torch.tensor(self.teacher.score([self.prompts[b]] * len(texts), texts), device=cands.device)


def sample_paired(ctx: PairedContext, steer: SteerConfig, seeds: range, *, guide: str = "value",
                  model: Any = None, desc: str = "") -> list[list[SteeredGeneration]]:
    """[P][S] generations of one method; guide: value (the value model) | exact (the teacher) | none."""
    model = model or ctx.model
    jobs = [(i, s) for i in range(len(ctx.prompts)) for s in seeds]
    done: dict[tuple[int, int], SteeredGeneration] = {}
    tag = SPLIT_TAG[ctx.split]
    bar = progress(total=len(jobs), desc=desc)
    for b in range(0, len(jobs), ctx.batch_rows):
        chunk = jobs[b:b + ctx.batch_rows]
        exact = ExactGuide(ctx.teacher, ctx.tokenizer, [ctx.prompts[i] for i, _ in chunk]) if guide == "exact" else None
        gens = generate_steered_batch(
            model, ctx.tokenizer, [ctx.prompts_ids[i] for i, _ in chunk], steer,
            ctx.value_model if guide == "value" else None,
            generators=[SharedNoise(ctx.seed, tag, i, s) for i, s in chunk],
            gates=[SteerGate(steer, seed=noise_seed(ctx.seed, tag, i, s, 7)) for i, s in chunk], guide=exact)
        done.update(zip(chunk, gens))
        bar.update(len(chunk))
    bar.close()
    return [[done[(i, s)] for s in seeds] for i in range(len(ctx.prompts))]


def score_grid(scorer: RewardModel, prompts: list[str], gens: list[list[SteeredGeneration]]) -> list[list[float]]:
    """[P][S] scores, one scorer call for the whole grid."""
    flat = scorer.score([p for p, row in zip(prompts, gens) for _ in row], [g.text for row in gens for g in row])
    out, at = [], 0
    for row in gens:
        out.append(flat[at:at + len(row)])
        at += len(row)
    return out


def value_grid(value_model: Any, gens: list[list[SteeredGeneration]]) -> list[list[float]]:
    """[P][S] V(prompt + response) at the response's last token (EOS included): the BoN-by-V ranking."""
    seqs = [g.prompt_ids + g.token_ids for row in gens for g in row]
    flat = value_model.final_values(seqs)
    out, at = [], 0
    for row in gens:
        out.append(flat[at:at + len(row)])
        at += len(row)
    return out
