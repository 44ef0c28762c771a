"""Pure-torch references: the semantics every fused implementation must match (and the fallback)."""

from __future__ import annotations

import torch


def soft_cross_entropy_reference(hidden: torch.Tensor, weight: torch.Tensor, target_probs: torch.Tensor,
                                 row_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """loss[n] = -sum_v p[n,v] log_softmax(hidden[n] @ weight.T)[v]; materialises the full [N, V] logits.

    Rows with row_mask == 0 get loss 0, argmax -1 and no gradient. Loss is float32 (float64 for float64 input).
    """
    logits = hidden @ weight.t()
    acc = torch.float64 if logits.dtype == torch.float64 else torch.float32
    logp = torch.log_softmax(logits.to(acc), dim=-1)
    loss = -(target_probs.to(acc) * logp).sum(-1)
    argmax = logits.detach().argmax(-1)
    if row_mask is not None:
        keep = row_mask.to(torch.bool)
        loss = torch.where(keep, loss, torch.zeros_like(loss))
        argmax = torch.where(keep, argmax, torch.full_like(argmax, -1))
    return loss, argmax


def soft_cross_entropy_from_target_reference(
        hidden: torch.Tensor, weight: torch.Tensor, target_hidden: torch.Tensor, target_weight: torch.Tensor,
        row_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Same loss with p = softmax(target_hidden @ target_weight.T): the target head restricted to the draft
    vocab rows. The target side is a constant (no gradient), as in EAGLE-3 training."""
    with torch.no_grad():
        t_logits = target_hidden @ target_weight.t()
        acc = torch.float64 if t_logits.dtype == torch.float64 else torch.float32
        probs = torch.softmax(t_logits.to(acc), dim=-1)
    return soft_cross_entropy_reference(hidden, weight, probs.to(hidden.dtype), row_mask)


def rmsnorm_residual_reference(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor,
                               eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """summed = x + residual; y = summed * rsqrt(mean(summed^2) + eps) * weight. Returns (y, summed)."""
    summed = x + residual
    acc = torch.float64 if summed.dtype == torch.float64 else torch.float32
    s = summed.to(acc)
    y = s * torch.rsqrt(s.pow(2).mean(-1, keepdim=True) + eps)
    return (y.to(summed.dtype) * weight), summed
