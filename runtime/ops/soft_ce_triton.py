"""Triton implementation of the fused soft cross-entropy (used on CUDA when selected; CPU via TRITON_INTERPRET=1).

Forward: one program per block of rows walks the whole vocab in BLOCK_V tiles, forming each logits tile with
tl.dot over BLOCK_H slices of the hidden size and folding it into online log-sum-exp stats; it writes loss,
lse, psum and argmax per row. Backward: per vocab chunk, one kernel recomputes the logits tile and writes
dz = g * (psum * softmax - p) into an [N, chunk] buffer; the two gradient GEMMs on it go to torch (cuBLAS).
Masked rows are dropped up front: kernels index target_probs through a row-id table, so p is never copied.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _logits_tile(h_ptr, w_ptr, rows, cols, n_rows, V, H, BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr,
                 BLOCK_H: tl.constexpr, IEEE: tl.constexpr):
    acc = tl.zeros((BLOCK_N, BLOCK_V), dtype=tl.float32)
    for h0 in range(0, H, BLOCK_H):
        hh = h0 + tl.arange(0, BLOCK_H)
        a = tl.load(h_ptr + rows[:, None] * H + hh[None, :], mask=(rows[:, None] < n_rows) & (hh[None, :] < H),
                    other=0.0)
        b = tl.load(w_ptr + cols[:, None] * H + hh[None, :], mask=(cols[:, None] < V) & (hh[None, :] < H),
                    other=0.0)
        if IEEE:  # fp32 inputs: exact products (tf32 would cost ~1e-3 relative error in the loss)
            acc += tl.dot(a, tl.trans(b), input_precision="ieee")
        else:
            acc += tl.dot(a, tl.trans(b))
    return acc


@triton.jit
def _soft_ce_fwd_kernel(h_ptr, w_ptr, p_ptr, row_ids_ptr, loss_ptr, lse_ptr, psum_ptr, arg_ptr, n_rows, V, H,
                        stride_p, BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_H: tl.constexpr,
                        IEEE: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < n_rows
    p_rows = tl.load(row_ids_ptr + rows, mask=row_ok, other=0)
    run_max = tl.full((BLOCK_N,), float("-inf"), tl.float32)
    run_sum = tl.zeros((BLOCK_N,), tl.float32)
    run_dot = tl.zeros((BLOCK_N,), tl.float32)
    run_psum = tl.zeros((BLOCK_N,), tl.float32)
    best = tl.full((BLOCK_N,), float("-inf"), tl.float32)
    best_idx = tl.zeros((BLOCK_N,), tl.int64)
    for v0 in range(0, V, BLOCK_V):
        cols = v0 + tl.arange(0, BLOCK_V)
        col_ok = cols < V
        z_raw = _logits_tile(h_ptr, w_ptr, rows, cols, n_rows, V, H, BLOCK_N, BLOCK_V, BLOCK_H, IEEE)
        z = tl.where(col_ok[None, :], z_raw, float("-inf"))  # padding columns: exp -> 0, never the argmax
        p = tl.load(p_ptr + p_rows[:, None].to(tl.int64) * stride_p + cols[None, :],
                    mask=row_ok[:, None] & col_ok[None, :], other=0.0).to(tl.float32)
        tile_max = tl.max(z, 1)
        tile_arg = tl.argmax(z, 1)
        better = tile_max > best
        best = tl.where(better, tile_max, best)
        best_idx = tl.where(better, (v0 + tile_arg).to(tl.int64), best_idx)
        new_max = tl.maximum(run_max, tile_max)
        run_sum = run_sum * tl.exp(run_max - new_max) + tl.sum(tl.exp(z - new_max[:, None]), 1)
        run_max = new_max
        run_dot += tl.sum(p * z_raw, 1)  # p = 0 and z_raw = 0 on padding columns
        run_psum += tl.sum(p, 1)
    lse = run_max + tl.log(run_sum)
    tl.store(loss_ptr + rows, run_psum * lse - run_dot, mask=row_ok)
    tl.store(lse_ptr + rows, lse, mask=row_ok)
    tl.store(psum_ptr + rows, run_psum, mask=row_ok)
    tl.store(arg_ptr + rows, best_idx, mask=row_ok)


@triton.jit
def _soft_ce_dz_kernel(h_ptr, w_ptr, p_ptr, row_ids_ptr, g_ptr, lse_ptr, psum_ptr, dz_ptr, n_rows, V, H,
                       stride_p, v_start, chunk, BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr,
                       BLOCK_H: tl.constexpr, IEEE: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    local = tl.program_id(1) * BLOCK_V + tl.arange(0, BLOCK_V)
    cols = v_start + local
    row_ok = rows < n_rows
    ok = row_ok[:, None] & (local[None, :] < chunk) & (cols[None, :] < V)
    z = _logits_tile(h_ptr, w_ptr, rows, cols, n_rows, V, H, BLOCK_N, BLOCK_V, BLOCK_H, IEEE)
    p_rows = tl.load(row_ids_ptr + rows, mask=row_ok, other=0)
    p = tl.load(p_ptr + p_rows[:, None].to(tl.int64) * stride_p + cols[None, :], mask=ok, other=0.0).to(tl.float32)
    g = tl.load(g_ptr + rows, mask=row_ok, other=0.0)
    lse = tl.load(lse_ptr + rows, mask=row_ok, other=0.0)
    psum = tl.load(psum_ptr + rows, mask=row_ok, other=0.0)
    dz = g[:, None] * (psum[:, None] * tl.exp(z - lse[:, None]) - p)
    tl.store(dz_ptr + rows[:, None] * chunk + local[None, :], dz.to(dz_ptr.dtype.element_ty), mask=ok)


def _blocks(h: torch.Tensor) -> dict:
    # Interpreter: small tiles keep numpy fast; GPU: tiles sized for tensor cores.
    small = h.device.type == "cpu"
    return dict(BLOCK_N=16 if small else 32, BLOCK_V=32 if small else 128, BLOCK_H=32 if small else 64,
                IEEE=h.dtype == torch.float32)


class _SoftCETriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, target_probs, row_ids, chunk):
        n, (v, h_dim) = row_ids.shape[0], weight.shape
        hidden_rows = hidden.index_select(0, row_ids).contiguous()
        stats = [torch.empty(n, dtype=torch.float32, device=hidden.device) for _ in range(3)]
        argmax = torch.empty(n, dtype=torch.long, device=hidden.device)
        blocks = _blocks(hidden)
        if n:
            grid = (triton.cdiv(n, blocks["BLOCK_N"]),)
            _soft_ce_fwd_kernel[grid](hidden_rows, weight, target_probs, row_ids, *stats, argmax, n, v, h_dim,
                                      target_probs.stride(0), **blocks)
        loss, lse, psum = stats
        ctx.save_for_backward(hidden_rows, weight, target_probs, row_ids, lse, psum)
        ctx.chunk, ctx.n_all = chunk, hidden.shape[0]
        ctx.mark_non_differentiable(argmax)
        return loss, argmax

    @staticmethod
    def backward(ctx, grad_loss, _grad_argmax):
        hidden_rows, weight, target_probs, row_ids, lse, psum = ctx.saved_tensors
        n, (v, h_dim) = hidden_rows.shape[0], weight.shape
        grad_rows = torch.zeros_like(hidden_rows)
        grad_weight = torch.zeros_like(weight)
        g = grad_loss.float().contiguous()
        blocks = _blocks(hidden_rows)
        chunk = min(ctx.chunk, v)
        dz_buf = torch.empty(n * chunk, dtype=hidden_rows.dtype, device=hidden_rows.device)
        for v0 in range(0, v, chunk):
            c = min(chunk, v - v0)
            dz = dz_buf[: n * c].view(n, c)
            if n:
                grid = (triton.cdiv(n, blocks["BLOCK_N"]), triton.cdiv(c, blocks["BLOCK_V"]))
                _soft_ce_dz_kernel[grid](hidden_rows, weight, target_probs, row_ids, g, lse, psum, dz, n, v, h_dim,
                                         target_probs.stride(0), v0, c, **blocks)
            grad_rows.addmm_(dz, weight[v0:v0 + c])
            torch.mm(dz.t(), hidden_rows, out=grad_weight[v0:v0 + c])
        grad_hidden = grad_rows.new_zeros(ctx.n_all, h_dim).index_copy_(0, row_ids, grad_rows)
        return grad_hidden, grad_weight, None, None, None


def soft_cross_entropy_triton(hidden, weight, target_probs, row_mask=None, chunk: int = 2048):
    """hidden [N,H], weight [V,H], target_probs [N,V] (row-contiguous) -> (loss [N] fp32, argmax [N])."""
    if hidden.dtype == torch.float64:
        raise ValueError("the Triton soft_cross_entropy accumulates in fp32; use fp32/bf16/fp16 inputs")
    n = hidden.shape[0]
    if row_mask is None:
        row_ids = torch.arange(n, device=hidden.device)
    else:
        row_ids = row_mask.to(torch.bool).nonzero().squeeze(-1)
    weight_c = weight.contiguous()
    probs = target_probs if target_probs.stride(-1) == 1 else target_probs.contiguous()
    loss_rows, arg_rows = _SoftCETriton.apply(hidden, weight_c, probs.detach(), row_ids, chunk)
    if row_mask is None:
        return loss_rows, arg_rows
    loss = torch.zeros(n, dtype=loss_rows.dtype, device=hidden.device).index_put((row_ids,), loss_rows)
    argmax = torch.full((n,), -1, dtype=torch.long, device=hidden.device).index_put((row_ids,), arg_rows)
    return loss, argmax
