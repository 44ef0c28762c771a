"""The SIA decision rule, as pure tensor functions (shared by the HF loop, HF and vLLM processors)."""

from __future__ import annotations

import torch


def topk_junction(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(top-K logits, top-K ids, entropy of softmax over the top-K only) for [..., V] logits (nats)."""
    top_logits, top_ids = torch.topk(logits.float(), k, dim=-1)
    logp = torch.log_softmax(top_logits, dim=-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return top_logits, top_ids, entropy


def steered_logits(logits: torch.Tensor, top_logits: torch.Tensor, top_ids: torch.Tensor,
                   values: torch.Tensor, weight: float) -> torch.Tensor:
    """z'_c = z_c + w * (V(c) - mean V) on the top-K candidates, -inf elsewhere ([V] or [B, V])."""
    centred = values.float() - values.float().mean(-1, keepdim=True)
    out = torch.full_like(logits, float("-inf"))
    out.scatter_(-1, top_ids, (top_logits + weight * centred).to(out.dtype))
    return out


def choose_token(logits: torch.Tensor, greedy: bool, generator: torch.Generator | None = None) -> int:
    """Temperature-1 sampling (or argmax) from one row of logits; no penalties after steering."""
    if greedy:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.float(), dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))
