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


def decode_attention_reference(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, positions: torch.Tensor,
                               cache: torch.Tensor, past: int, tree_mask: torch.Tensor | None, heads: int,
                               scale: float) -> torch.Tensor:
    """HF Llama attention for T new tokens (rotate_half RoPE, GQA) against `cache` [2, KV, C, D], whose slots
    past..past+T-1 receive the new keys/values. tree_mask [T, M] covers the last M of the S = past + T slots
    (earlier slots are seen by every query): new token i sees slot S - M + j iff tree_mask[i, j]
    (None = causal over the new tokens). Returns [T, heads * D]."""
    t, kv_heads, d = qkv.shape[0], cache.shape[1], cache.shape[-1]
    q, k, v = qkv.view(t, heads + 2 * kv_heads, d).split([heads, kv_heads, kv_heads], dim=1)
    c, s = cos[positions].repeat(1, 2)[:, None], sin[positions].repeat(1, 2)[:, None]  # [T, 1, D]

    def rope(x: torch.Tensor) -> torch.Tensor:
        return x * c + torch.cat([-x[..., d // 2:], x[..., : d // 2]], dim=-1) * s

    cache[0, :, past: past + t] = rope(k).transpose(0, 1)
    cache[1, :, past: past + t] = v.transpose(0, 1)
    new = tree_mask.to(torch.bool) if tree_mask is not None else torch.ones(t, t, dtype=torch.bool).tril()
    mask = torch.cat([torch.ones(t, past + t - new.shape[1], dtype=torch.bool), new.cpu()], dim=1).to(qkv.device)
    keys, values = cache[0, :, : past + t][None], cache[1, :, : past + t][None]
    out = torch.nn.functional.scaled_dot_product_attention(rope(q).transpose(0, 1)[None], keys, values,
                                                           attn_mask=mask, scale=scale, enable_gqa=True)
    return out[0].transpose(0, 1).reshape(t, heads * d)
