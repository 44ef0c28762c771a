"""The one definition of the training-time-test (TTT) attention pattern.

During TTT step k (0-based) the draft's queries sit at sequence index q (rope position q + k). The
keys are the concatenation of every step's keys so far: block j (0..k) holds the keys of step j at
indices 0..T-1, i.e. flat key index = j * T + kpos. A query may see
  - block 0 causally (kpos <= q): the step-0 keys were computed from the target's own hidden states,
    exactly like the draft KV cache over the accepted context at inference;
  - in every later block only its own index (kpos == q): the draft's earlier speculative tokens of
    the same chain;
and never a padded key. `ttt_allowed` is that predicate; SDPA (CPU) materialises it as a boolean
mask and flex_attention (CUDA) uses it as its mask_mod, so the two cannot drift apart.
"""

from __future__ import annotations

import torch


def ttt_allowed(q_idx: torch.Tensor, kv_idx: torch.Tensor, seq_len: int) -> torch.Tensor:
    """True where query index `q_idx` may attend flat key index `kv_idx` (padding handled apart)."""
    block = kv_idx // seq_len
    kpos = kv_idx % seq_len
    return ((block == 0) & (kpos <= q_idx)) | ((block > 0) & (kpos == q_idx))


def ttt_dense_mask(seq_len: int, step: int, key_padding: torch.Tensor | None = None) -> torch.Tensor:
    """Boolean SDPA mask [B or 1, 1, T, T*(step+1)] for TTT step `step` (True = may attend).

    `key_padding` [B, T] is True for real tokens; padded keys are masked, except that every query
    keeps its own block-0 key so no row is empty (an empty row makes SDPA return NaN, which would
    poison gradients even though padded queries carry no loss).
    """
    q = torch.arange(seq_len)[:, None]
    kv = torch.arange(seq_len * (step + 1))[None, :]
    mask = ttt_allowed(q, kv, seq_len)[None, None]  # [1, 1, T, K]
    if key_padding is not None:
        real = key_padding.bool().repeat(1, step + 1)  # [B, K]
        own = (torch.arange(seq_len * (step + 1))[None, :] == q)[None, None]
        mask = (mask & real[:, None, None, :].to(mask.device)) | own
    return mask


def ttt_flex_block_mask(seq_len: int, step: int, key_padding: torch.Tensor | None, device: torch.device):
    """flex_attention BlockMask for the same pattern as `ttt_dense_mask`."""
    from torch.nn.attention.flex_attention import create_block_mask

    pad = key_padding.bool().to(device) if key_padding is not None else None

    def mask_mod(b, h, q_idx, kv_idx):
        allowed = ttt_allowed(q_idx, kv_idx, seq_len)
        if pad is not None:
            allowed = (allowed & pad[b, kv_idx % seq_len]) | (kv_idx == q_idx)
        return allowed

    batch = pad.shape[0] if pad is not None else None
    return create_block_mask(mask_mod, B=batch, H=None, Q_LEN=seq_len, KV_LEN=seq_len * (step + 1),
                             device=device)
