"""Training-time test (TTT): unroll the draft `ttt_length` steps exactly as EAGLE-3 drafts at inference.

Indexing (T = sequence length, t = row index, k = step):
  step k at row t reads token ids[t+k+1] and, for k = 0, the target's fused aux state at t (for k > 0
  the draft's own pre-norm output of step k-1 at t); its rope position is t+k; it predicts token
  ids[t+k+2], whose target distribution is the target's output at t+k+1. A row counts for step k iff
  token t+k+2 exists, is real and is in the loss mask. Attention: model/masks.py.
Loss = sum_k decay^k * ploss_k, ploss_k = mean soft-CE over counted rows (runtime.ops.soft_cross_entropy).
Metrics: ploss_k, acc_k (draft argmax == target argmax, both over the draft vocab), and
`accept_len`: the expected tokens per draft round under greedy verification, 1 (the target's own token)
+ the number of leading steps that are correct, averaged over rows counted at step 0 (a step without a
target ends the chain). It assumes the target's argmax lies in the draft vocab.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.utils.checkpoint import checkpoint

from runtime.ops import soft_cross_entropy
from speculative.data.dataset import Batch
from speculative.model.draft import Eagle3Draft
from speculative.target.backend import TargetOutputs


def shift_left(x: torch.Tensor, n: int, fill: float | int | bool = 0) -> torch.Tensor:
    """x[:, t] <- x[:, t+n] along dim 1, filling the last n rows with `fill`."""
    if n == 0:
        return x
    out = torch.full_like(x, fill)
    if n < x.shape[1]:
        out[:, : x.shape[1] - n] = x[:, n:]
    return out


def shift_right(x: torch.Tensor, n: int, fill: float | int | bool = 0) -> torch.Tensor:
    """x[:, t] <- x[:, t-n] along dim 1, filling the first n rows with `fill` (undoes shift_left)."""
    if n == 0:
        return x
    out = torch.full_like(x, fill)
    if n < x.shape[1]:
        out[:, n:] = x[:, : x.shape[1] - n]
    return out


@dataclass
class TTTResult:
    loss: torch.Tensor  # scalar, differentiable
    ploss: list[float]
    acc: list[float]
    counted: list[int]  # rows counted per step
    accept_len: float
    accept_rows: int
    correct: torch.Tensor = field(repr=False)  # [K, B, T] bool, for simulations


def ttt_unroll(draft: Eagle3Draft, batch: Batch, target: TargetOutputs, *, ttt_length: int = 7,
               decay: float = 0.8, attn_impl: str = "sdpa", recompute: bool = False) -> TTTResult:
    """`recompute`: keep only each step's inputs and recompute its midlayer in backward (activation
    checkpointing): ~40 MB less per step at 512 tokens for one more midlayer forward per step."""
    ids, real = batch.input_ids, batch.attention_mask
    wanted = batch.attention_mask & batch.loss_mask
    b, t = ids.shape
    rows = torch.arange(t, device=ids.device)[None].expand(b, t)
    hidden = draft.project_aux(target.aux_hidden)
    kv_blocks: list[tuple[torch.Tensor, torch.Tensor]] = []
    total = hidden.new_zeros(())
    ploss, acc, counted = [], [], []
    correct_all = torch.zeros(ttt_length, b, t, dtype=torch.bool, device=ids.device)
    valid_all = torch.zeros_like(correct_all)
    # rows whose full-vocab target argmax is outside the draft vocab: no loss (SpecForge), and a miss in acc
    in_vocab = (draft.t2d[target.target_argmax] if target.target_argmax is not None
                else torch.ones_like(wanted))
    # Row t at step k is scored against the target at row t+k+1. The draft rows are moved there (a [B, T, H]
    # shift) rather than the [B, T, V_d] probabilities moved back: the loss keeps its probabilities for the
    # backward pass, and a shifted copy per step (65 MB at 512 tokens x 32k vocab) would be held 7 times.
    probs_rows = target.target_probs.reshape(b * t, -1)  # a view; every step reads its rows in place
    target_best = target.target_probs.argmax(-1)  # [B, T]: the target's choice on the draft vocab
    for k in range(ttt_length):
        embeds = draft.embed(shift_left(ids, k + 1))
        if recompute and torch.is_grad_enabled():
            prenorm, key, value = checkpoint(draft.ttt_step, embeds, hidden, rows + k, tuple(kv_blocks), real,
                                             attn_impl, use_reentrant=False)
            kv_blocks.append((key, value))
        else:
            prenorm = draft.forward_ttt(embeds, hidden, rows + k, kv_blocks, key_padding=real, attn_impl=attn_impl)
        valid = shift_left(wanted, k + 2, False)
        n = int(valid.sum())
        if n:
            moved = shift_right(draft.norm(prenorm), k + 1).reshape(b * t, -1)
            mask = shift_right(valid, k + 1, False).reshape(-1)
            loss_rows, argmax = soft_cross_entropy(moved, draft.lm_head.weight, probs_rows, row_mask=mask)
            loss_rows = shift_left(loss_rows.view(b, t), k + 1)
            trainable = shift_left(in_vocab, k + 1, False) & valid
            step_loss = (loss_rows * trainable).sum() / trainable.sum().clamp(min=1)
            hit = (shift_left(argmax.view(b, t), k + 1, -1) == shift_left(target_best, k + 1, -1)) & trainable
            correct_all[k] = hit
            acc.append(float(hit.sum()) / n)
        else:
            step_loss = hidden.new_zeros(())
            acc.append(0.0)
        valid_all[k] = valid
        total = total + (decay ** k) * step_loss
        ploss.append(float(step_loss.detach()))
        counted.append(n)
        hidden = prenorm  # the next step feeds back the draft's own pre-norm state
    accept_len, accept_rows = simulated_accept_length(correct_all, valid_all)
    return TTTResult(total, ploss, acc, counted, accept_len, accept_rows, correct_all)


def simulated_accept_length(correct: torch.Tensor, valid: torch.Tensor) -> tuple[float, int]:
    """Mean of 1 + leading correct steps over rows valid at step 0 ([K, B, T] inputs)."""
    ok = (correct & valid).long()
    leading = torch.cumprod(ok, dim=0).sum(0)  # [B, T]
    base = valid[0]
    n = int(base.sum())
    return (float((1 + leading[base]).float().mean()) if n else 0.0), n
