"""The target model behind a KV cache: prefill, tree verification in one forward, and commit of the
accepted path (cache entries re-indexed so that only the accepted tokens remain, in order).

Two backends with one interface: "fast" (Llama and Qwen2 targets: `llama_fast.LlamaDecoder`, fused weights and
a preallocated cache; what CPU decoding speed depends on) and "hf" (any HF causal LM through its own forward
and a DynamicCache). "auto" takes "fast" where it applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from transformers import DynamicCache

from speculative.decode.llama_fast import LlamaDecoder, unsupported_reason

Backend = Literal["auto", "fast", "hf"]


@dataclass
class TargetOutput:
    logits: torch.Tensor  # [T, V] fp32
    features: torch.Tensor | None  # [T, len(aux_layers) * H]: concatenated aux hidden states, or None


class TargetRunner:
    """Wraps a HF causal LM (Llama family). One sequence (batch 1) at a time."""

    def __init__(self, model: torch.nn.Module, aux_layers: Sequence[int] = (), backend: Backend = "auto"):
        self.model = model.eval()
        n_layers = model.config.num_hidden_layers
        bad = [k for k in aux_layers if not 0 <= k < n_layers]
        if bad:
            raise ValueError(f"aux layer ids {bad} outside [0, {n_layers}) (id k = residual after k layers)")
        self.aux_layers = list(aux_layers)
        reason = unsupported_reason(model)
        if backend == "fast" and reason:
            raise ValueError(f"backend 'fast' cannot run this model: {reason}")
        self.backend = "fast" if backend == "fast" or (backend == "auto" and reason is None) else "hf"
        self.fast = LlamaDecoder(model) if self.backend == "fast" else None
        self.cache: DynamicCache | None = None  # the "hf" backend's cache
        self.length = 0  # tokens in the KV cache

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def reset(self) -> None:
        self.cache = DynamicCache(config=self.model.config) if self.fast is None else None
        self.length = 0

    def _forward(self, ids: torch.Tensor, positions: torch.Tensor, tree_mask: torch.Tensor | None,
                 want_features: bool, last_logits_only: bool = False) -> TargetOutput:
        """New tokens at `positions`; each sees the cache and the new tokens allowed by tree_mask (None: causal)."""
        aux = self.aux_layers if want_features else []
        if self.fast is not None:
            logits, feats = self.fast.forward(ids, positions, self.length, tree_mask, aux,
                                              slice(-1, None) if last_logits_only else slice(None))
        else:
            logits, feats = self._hf_forward(ids, positions, tree_mask, aux, last_logits_only)
        self.length += int(ids.numel())
        return TargetOutput(logits.float(), feats)

    @torch.inference_mode()
    def _hf_forward(self, ids, positions, tree_mask, aux, last_logits_only):
        mask = None
        if tree_mask is not None:
            n, past = int(ids.numel()), self.length
            allowed = torch.cat([torch.ones(n, past, dtype=torch.bool), tree_mask], dim=1)
            # additive float mask works for both eager and sdpa attention
            mask = torch.zeros(n, past + n, dtype=self.dtype).masked_fill_(~allowed, torch.finfo(self.dtype).min)
            mask = mask[None, None].to(self.device)
        # the LM head over a 49k vocab is ~20% of a small model's FLOPs: skip it where only the last row counts
        out = self.model(input_ids=ids[None].to(self.device), position_ids=positions[None].to(self.device),
                         attention_mask=mask, past_key_values=self.cache, use_cache=True,
                         output_hidden_states=bool(aux), logits_to_keep=1 if last_logits_only else 0)
        # hidden_states[k] = residual stream after k decoder layers (k < L is before the final norm)
        feats = torch.cat([out.hidden_states[k][0] for k in aux], dim=-1) if aux else None
        return out.logits[0], feats

    def prefill(self, prompt_ids: torch.Tensor, want_features: bool = True) -> TargetOutput:
        """Fill the cache with the prompt; logits of the last position only, features of all positions."""
        self.reset()
        n = int(prompt_ids.numel())
        return self._forward(prompt_ids, torch.arange(n), None, want_features, last_logits_only=True)

    def step(self, token: int, want_features: bool = False) -> TargetOutput:
        """Plain autoregressive step (the baseline decoder uses exactly this)."""
        return self._forward(torch.tensor([token]), torch.tensor([self.length]), None, want_features)

    def verify(self, tokens: torch.Tensor, depths: torch.Tensor, tree_mask: torch.Tensor,
               want_features: bool = True) -> TargetOutput:
        """One forward over a draft tree: node i sits at position length + depth_i and attends to the whole
        cache plus its own ancestors (`tree_mask`, [n, n] bool)."""
        return self._forward(tokens, self.length + depths, tree_mask, want_features)

    def commit(self, kept: Sequence[int], n_fed: int) -> None:
        """Keep, of the last `n_fed` cache entries, only those at offsets `kept` (in that order)."""
        base = self.length - n_fed
        new_len = base + len(kept)
        if self.fast is not None:
            self.fast.keep(base, kept)
        elif list(kept) == list(range(len(kept))):
            for layer in self.cache.layers:  # a prefix: a view, no copy
                layer.keys, layer.values = layer.keys[..., :new_len, :], layer.values[..., :new_len, :]
        else:
            idx = torch.cat([torch.arange(base), base + torch.as_tensor(list(kept), dtype=torch.long)])
            idx = idx.to(self.device)
            for layer in self.cache.layers:
                layer.keys = layer.keys.index_select(-2, idx)
                layer.values = layer.values.index_select(-2, idx)
        self.length = new_len
