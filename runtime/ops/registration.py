"""Fake (shape) kernels and autograd for the llmsys:: ops declared in csrc/cpu/registry.cpp.

Imported by library.py right after the op library is loaded (the schemas must exist first). With these,
`torch.library.opcheck` passes and the ops trace under torch.compile(fullgraph=True).
"""

from __future__ import annotations

import torch

_SOFT_CE_FWD = "llmsys::soft_ce_fwd"
_SOFT_CE_BWD = "llmsys::soft_ce_bwd"


def _stat_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


@torch.library.register_fake(_SOFT_CE_FWD)
def _soft_ce_fwd_fake(hidden, weight, target_probs, row_mask, chunk, bf16_gemm=False):
    n = hidden.shape[0]
    stats = hidden.new_empty(n, dtype=_stat_dtype(hidden))
    return stats, torch.empty_like(stats), torch.empty_like(stats), hidden.new_empty(n, dtype=torch.long)


@torch.library.register_fake(_SOFT_CE_BWD)
def _soft_ce_bwd_fake(grad_loss, hidden, weight, target_probs, row_mask, lse, psum, chunk, bf16_gemm=False):
    return torch.empty_like(hidden), torch.empty_like(weight)


def _soft_ce_setup(ctx, inputs, output):
    hidden, weight, target_probs, row_mask, chunk, *rest = inputs
    _, lse, psum, _ = output
    ctx.chunk = chunk
    ctx.bf16_gemm = bool(rest[0]) if rest else False  # the backward GEMMs run in the forward's precision
    ctx.has_mask = row_mask is not None
    masks = (row_mask,) if row_mask is not None else ()
    ctx.save_for_backward(hidden, weight, target_probs, lse, psum, *masks)


def _soft_ce_backward(ctx, grad_loss, grad_lse, grad_psum, grad_argmax):
    # lse / psum are internal stats (the public wrappers never return them), so their grads are ignored.
    hidden, weight, target_probs, lse, psum, *masks = ctx.saved_tensors
    row_mask = masks[0] if ctx.has_mask else None
    grad_hidden, grad_weight = torch.ops.llmsys.soft_ce_bwd(
        grad_loss.contiguous(), hidden, weight, target_probs, row_mask, lse, psum, ctx.chunk, ctx.bf16_gemm)
    return grad_hidden, grad_weight, None, None, None, None


torch.library.register_autograd(_SOFT_CE_FWD, _soft_ce_backward, setup_context=_soft_ce_setup)


_FROM_TARGET_FWD = "llmsys::soft_ce_from_target_fwd"


@torch.library.register_fake(_FROM_TARGET_FWD)
def _from_target_fwd_fake(hidden, weight, target_hidden, target_weight, row_mask, chunk):
    n = hidden.shape[0]
    stats = hidden.new_empty(n, dtype=_stat_dtype(hidden))
    return stats, torch.empty_like(stats), torch.empty_like(stats), hidden.new_empty(n, dtype=torch.long)


@torch.library.register_fake("llmsys::soft_ce_from_target_bwd")
def _from_target_bwd_fake(grad_loss, hidden, weight, target_hidden, target_weight, row_mask, lse, target_lse, chunk):
    return torch.empty_like(hidden), torch.empty_like(weight)


def _from_target_setup(ctx, inputs, output):
    hidden, weight, target_hidden, target_weight, row_mask, chunk = inputs
    _, lse, target_lse, _ = output
    ctx.chunk = chunk
    ctx.has_mask = row_mask is not None
    masks = (row_mask,) if row_mask is not None else ()
    ctx.save_for_backward(hidden, weight, target_hidden, target_weight, lse, target_lse, *masks)


def _from_target_backward(ctx, grad_loss, grad_lse, grad_target_lse, grad_argmax):
    hidden, weight, target_hidden, target_weight, lse, target_lse, *masks = ctx.saved_tensors
    row_mask = masks[0] if ctx.has_mask else None
    grad_hidden, grad_weight = torch.ops.llmsys.soft_ce_from_target_bwd(
        grad_loss.contiguous(), hidden, weight, target_hidden, target_weight, row_mask, lse, target_lse, ctx.chunk)
    return grad_hidden, grad_weight, None, None, None, None  # the target side is frozen


torch.library.register_autograd(_FROM_TARGET_FWD, _from_target_backward, setup_context=_from_target_setup)


_RMS_FWD = "llmsys::rmsnorm_residual_fwd"


@torch.library.register_fake(_RMS_FWD)
def _rms_fwd_fake(x, residual, weight, eps):
    return torch.empty_like(x), torch.empty_like(x), x.new_empty(x.shape[:-1] + (1,))


@torch.library.register_fake("llmsys::rmsnorm_residual_bwd")
def _rms_bwd_fake(grad_y, grad_summed, summed, weight, rstd):
    return torch.empty_like(summed), torch.empty_like(weight)


def _rms_setup(ctx, inputs, output):
    _, _, weight, _ = inputs
    _, summed, rstd = output
    ctx.save_for_backward(summed, weight, rstd)


def _rms_backward(ctx, grad_y, grad_summed, _grad_rstd):
    summed, weight, rstd = ctx.saved_tensors
    grad_y = torch.zeros_like(summed) if grad_y is None else grad_y
    grad_summed = torch.zeros_like(summed) if grad_summed is None else grad_summed
    grad_x, grad_weight = torch.ops.llmsys.rmsnorm_residual_bwd(grad_y, grad_summed, summed, weight, rstd)
    # x and residual enter only through their sum, so both get the same gradient.
    return grad_x, grad_x, grad_weight, None


torch.library.register_autograd(_RMS_FWD, _rms_backward, setup_context=_rms_setup)


@torch.library.register_fake("llmsys::small_m_linear")
def _small_m_linear_fake(x, weight):
    return x.new_empty((x.shape[0], weight.shape[0]))


def _small_m_swiglu_fake(x, gate_up):
    return x.new_empty((x.shape[0], gate_up.shape[0] // 2))


def _decode_attention_fake(qkv, cos, sin, positions, cache, past, tree_mask, heads, scale):
    return qkv.new_empty((qkv.shape[0], heads * cache.shape[-1]))


# the decoding ops are newer than some installed builds of runtime._C (`make setup` rebuilds it); the
# Python side falls back to torch where an op is missing (runtime/ops/__init__.py: has_op)
for _name, _fake in (("small_m_swiglu", _small_m_swiglu_fake), ("decode_attention", _decode_attention_fake)):
    if hasattr(torch.ops.llmsys, _name):
        torch.library.register_fake(f"llmsys::{_name}")(_fake)
