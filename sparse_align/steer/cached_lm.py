"""A causal LM with its KV cache, able to score K candidate next tokens on top of the cached prefix.

`branch(candidates)` runs ONE forward of K tokens (batch 1, sequence K) at the same position, with a
tree mask so each candidate sees the prefix and itself only; the K cache entries are then dropped
(or one is kept by `commit`, which spares the next step's forward). The prefix is never recomputed.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache


def lm_logits(model: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """The LM head on final (normed) hidden states, with the model's logit soft-capping if it has one.
    Lets a caller compute logits only for the rows it keeps (a 262k-vocabulary head is costly)."""
    logits = model.get_output_embeddings()(hidden)
    cap = getattr(getattr(model, "config", None), "final_logit_softcapping", None)
    return torch.tanh(logits / cap) * cap if cap else logits


class CachedLM:
    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.cache = DynamicCache()
        self.length = 0
        self.forwards = 0  # every model call, for cost accounting in tests and benchmarks

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def append(self, token_ids: torch.Tensor | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Feed tokens; return (logits, final hidden state) at the last one ([V], [H])."""
        ids = torch.as_tensor(token_ids, device=self.device).view(1, -1)
        n = ids.shape[1]
        if n == 0:
            raise ValueError("append needs at least one token")
        pos = torch.arange(self.length, self.length + n, device=self.device)[None]
        out = self.model(ids, past_key_values=self.cache, position_ids=pos, use_cache=True,
                         output_hidden_states=True, logits_to_keep=1)
        self.length += n
        self.forwards += 1
        return out.logits[0, -1], out.hidden_states[-1][0, -1]

    @torch.inference_mode()
    def branch(self, candidates: torch.Tensor, *, with_logits: bool = True) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(logits [K, V], final hidden [K, H]) after appending each candidate alone to the prefix;
        `with_logits=False`: logits None (the LM head runs on one column only; see `lm_logits`)."""
        cands = torch.as_tensor(candidates, device=self.device).view(1, -1)
        k, total = cands.shape[1], self.length + cands.shape[1]
        dtype = next(self.model.parameters()).dtype
        mask = torch.full((1, 1, k, total), torch.finfo(dtype).min, dtype=dtype, device=self.device)
        mask[..., : self.length] = 0
        idx = torch.arange(k, device=self.device)
        mask[0, 0, idx, self.length + idx] = 0
        pos = torch.full((1, k), self.length, device=self.device)
        out = self.model(cands, past_key_values=self.cache, position_ids=pos, attention_mask=mask,
                         use_cache=True, output_hidden_states=True, logits_to_keep=0 if with_logits else 1)
        self.forwards += 1
        self._pending_branch = k
        return (out.logits[0] if with_logits else None), out.hidden_states[-1][0]

    def drop_branch(self) -> None:
        k = getattr(self, "_pending_branch", 0)
        if k:
            self.cache.crop(-k)
            self._pending_branch = 0

    def commit(self, j: int) -> None:
        """Keep candidate j of the last branch as the next token (its KV is already computed)."""
        k = self._pending_branch
        if not 0 <= j < k:
            raise IndexError(f"candidate {j} outside the last branch of {k}")
        for layer in self.cache.layers:
            keep = slice(self.length + j, self.length + j + 1)
            layer.keys = torch.cat([layer.keys[:, :, : self.length], layer.keys[:, :, keep]], dim=2)
            layer.values = torch.cat([layer.values[:, :, : self.length], layer.values[:, :, keep]], dim=2)
        self.length += 1
        self._pending_branch = 0
