"""The SIA decision rule, as pure tensor functions (shared by the HF loop, HF and vLLM processors)."""

from __future__ import annotations

from typing import Any

import torch

DETECTORS = ("topk_entropy", "full_entropy", "topk_mass")


def topk_junction(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(top-K logits, top-K ids, entropy of softmax over the top-K only) for [..., V] logits (nats)."""
    top_logits, top_ids = torch.topk(logits.float(), k, dim=-1)
    logp = torch.log_softmax(top_logits, dim=-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return top_logits, top_ids, entropy


def detector_scores(logits: torch.Tensor, top_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every junction score for [..., V] logits and their top-K ([..., K]); higher = more of a junction.
    topk_entropy: the paper's; full_entropy: over the whole vocabulary; topk_mass: 1 - p(top-K), the
    probability the base model puts outside the candidates steering can choose from."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    top_logp = torch.log_softmax(top_logits.float(), dim=-1)
    full = -(logp.exp() * logp.clamp_min(torch.finfo(logp.dtype).min)).sum(-1)  # 0 * -inf must not be nan
    mass = torch.logsumexp(top_logits.float(), -1) - torch.logsumexp(logits.float(), -1)
    return {"topk_entropy": -(top_logp.exp() * top_logp).sum(-1), "full_entropy": full,
            "topk_mass": (1.0 - mass.exp()).clamp_min(0.0)}


def junction(logits: torch.Tensor, k: int, detector: str = "topk_entropy"
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(top-K logits, top-K ids, junction score of `detector`) — `topk_junction` for any detector."""
    top_logits, top_ids, entropy = topk_junction(logits, k)
    if detector == "topk_entropy":
        return top_logits, top_ids, entropy
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector '{detector}'; choose one of {DETECTORS}")
    return top_logits, top_ids, detector_scores(logits, top_logits)[detector]


def steered_logits(logits: torch.Tensor, top_logits: torch.Tensor, top_ids: torch.Tensor,
                   values: torch.Tensor, weight: float) -> torch.Tensor:
    """z'_c = z_c + w * (V(c) - mean V) on the top-K candidates, -inf elsewhere ([V] or [B, V])."""
    centred = values.float() - values.float().mean(-1, keepdim=True)
    out = torch.full_like(logits, float("-inf"))
    out.scatter_(-1, top_ids, (top_logits + weight * centred).to(out.dtype))
    return out


def choose_token(logits: torch.Tensor, greedy: bool, generator: Any = None) -> int:
    """Temperature-1 sampling (or argmax) from one row of logits; no penalties after steering.
    `generator`: a torch.Generator, or a SharedNoise stream (Gumbel-max with noise fixed per position)."""
    if greedy:
        return int(torch.argmax(logits))
    if hasattr(generator, "gumbel_choice"):
        return generator.gumbel_choice(logits)
    probs = torch.softmax(logits.float(), dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))
