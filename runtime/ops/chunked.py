"""Soft cross-entropy against the target head's own logits, chunked over the vocab in plain torch ops.

loss[n] = -sum_v q[n,v] log softmax(z)[n,v],  z = hidden @ weight.T,  q = softmax(target_hidden @ target_weight.T)

Neither z nor the target logits exist whole: each vocab chunk's logits of both models are formed, folded into
online log-sum-exp stats (per row: max and sum for z, max and sum for t, and sum_v exp(t - m_t) * z), and
dropped. Backward recomputes them per chunk. The target side gets no gradient (it is frozen in EAGLE-3).
Runs on any device; peak extra memory is 2 * N * chunk logits instead of 2 * N * V.
"""

from __future__ import annotations

import torch


def _chunks(v: int, chunk: int):
    for v0 in range(0, v, chunk):
        yield v0, min(v0 + chunk, v)


def _forward_stats(hidden, weight, target_hidden, target_weight, chunk):
    n = hidden.shape[0]
    acc = torch.float64 if hidden.dtype == torch.float64 else torch.float32
    neg_inf = torch.full((n,), float("-inf"), dtype=acc, device=hidden.device)
    z_max, t_max = neg_inf.clone(), neg_inf.clone()
    z_sum, t_sum, tz_sum = (torch.zeros(n, dtype=acc, device=hidden.device) for _ in range(3))
    best = neg_inf.clone()
    argmax = torch.zeros(n, dtype=torch.long, device=hidden.device)
    for v0, v1 in _chunks(weight.shape[0], chunk):
        z = (hidden @ weight[v0:v1].t()).to(acc)
        t = (target_hidden @ target_weight[v0:v1].t()).to(acc)
        c_max, c_arg = z.max(-1)
        better = c_max > best
        best = torch.where(better, c_max, best)
        argmax = torch.where(better, c_arg + v0, argmax)
        new_z = torch.maximum(z_max, c_max)
        z_sum = z_sum * torch.exp(z_max - new_z) + torch.exp(z - new_z[:, None]).sum(-1)
        z_max = new_z
        new_t = torch.maximum(t_max, t.max(-1).values)
        scale = torch.exp(t_max - new_t)
        e_t = torch.exp(t - new_t[:, None])
        t_sum = t_sum * scale + e_t.sum(-1)
        tz_sum = tz_sum * scale + (e_t * z).sum(-1)
        t_max = new_t
    z_lse = z_max + torch.log(z_sum)
    t_lse = t_max + torch.log(t_sum)
    loss = z_lse - tz_sum / t_sum
    return loss, z_lse, t_lse, argmax


class _SoftCEFromTarget(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, target_hidden, target_weight, chunk):
        with torch.no_grad():
            loss, z_lse, t_lse, argmax = _forward_stats(hidden, weight, target_hidden, target_weight, chunk)
        ctx.save_for_backward(hidden, weight, target_hidden, target_weight, z_lse, t_lse)
        ctx.chunk = chunk
        ctx.mark_non_differentiable(argmax)
        return loss, argmax

    @staticmethod
    def backward(ctx, grad_loss, _grad_argmax):
        hidden, weight, target_hidden, target_weight, z_lse, t_lse = ctx.saved_tensors
        grad_hidden = torch.zeros_like(hidden)
        grad_weight = torch.zeros_like(weight)
        g = grad_loss.to(z_lse.dtype)[:, None]
        for v0, v1 in _chunks(weight.shape[0], ctx.chunk):
            z = (hidden @ weight[v0:v1].t()).to(z_lse.dtype)
            t = (target_hidden @ target_weight[v0:v1].t()).to(z_lse.dtype)
            dz = (g * (torch.exp(z - z_lse[:, None]) - torch.exp(t - t_lse[:, None]))).to(hidden.dtype)
            grad_hidden += dz @ weight[v0:v1]
            grad_weight[v0:v1] = dz.t() @ hidden
        return grad_hidden, grad_weight, None, None, None


def soft_cross_entropy_from_target_chunked(hidden, weight, target_hidden, target_weight, row_mask=None,
                                           chunk: int = 4096):
    if row_mask is None:
        return _SoftCEFromTarget.apply(hidden, weight, target_hidden.detach(), target_weight.detach(), chunk)
    # Masked rows are dropped before any logits are formed (prompt/padding rows cost nothing).
    keep = row_mask.to(torch.bool)
    rows = keep.nonzero().squeeze(-1)
    loss_rows, arg_rows = _SoftCEFromTarget.apply(hidden[rows], weight, target_hidden.detach()[rows],
                                                  target_weight.detach(), chunk)
    acc = loss_rows.dtype
    loss = torch.zeros(hidden.shape[0], dtype=acc, device=hidden.device).index_put((rows,), loss_rows)
    argmax = torch.full((hidden.shape[0],), -1, dtype=torch.long, device=hidden.device)
    argmax[rows] = arg_rows
    return loss, argmax
