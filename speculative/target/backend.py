"""Target backends: what the trainer needs from the target model, behind one interface.

`TargetBackend.forward(input_ids, attention_mask, t2d)` returns `TargetOutputs`:
  aux_hidden   [B, T, 3*H_t]  the residual stream after each aux layer id (vLLM convention), concatenated
                              low -> high as vLLM's `combine_hidden_states` expects;
  last_hidden  [B, T, H_t]    the final normed hidden state (input of the target's lm_head);
  target_probs [B, T, V_d]    softmax of the target logits restricted to the draft vocab: the lm_head
                              is evaluated only on the `t2d` rows, so [B, T, V_target] is never kept;
  target_argmax [B, T] | None the full-vocabulary argmax: rows whose argmax lies outside the draft vocab
                              cannot be predicted by the draft and are left out of the loss (SpecForge).
Online HF lives here; an offline shard reader (precomputed states) and a megatron tensor-parallel
target implement the same interface (issue 4) and plug into the trainer unchanged.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch

from speculative.target.layers import resolve_aux_layer_ids


@dataclass
class TargetOutputs:
    aux_hidden: torch.Tensor
    last_hidden: torch.Tensor
    target_probs: torch.Tensor
    target_argmax: torch.Tensor | None = None


class TargetBackend(ABC):
    """The target model as the draft trainer sees it."""

    config: Any  # the target's HF config (the draft config is derived from it)
    aux_layer_ids: list[int]

    @abstractmethod
    def embedding_weight(self) -> torch.Tensor:
        """[V_target, H_t] input embedding (shared, frozen, by the draft)."""

    @abstractmethod
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, t2d: torch.Tensor) -> TargetOutputs:
        """Aux states, last hidden state and draft-vocab target probabilities for one batch."""


def restricted_probs(last_hidden: torch.Tensor, lm_head_weight: torch.Tensor, t2d: torch.Tensor) -> torch.Tensor:
    """softmax over the draft vocab of the target logits, computing only the `t2d` rows of the head."""
    rows = lm_head_weight[t2d]  # [V_d, H] in ascending target-id order = draft-id order
    if rows.dtype != last_hidden.dtype and not torch.is_autocast_enabled(rows.device.type):
        rows = rows.to(last_hidden.dtype)  # a narrower stored table; under autocast the GEMM casts both anyway
    logits = (last_hidden @ rows.t()).float()
    del rows  # ~74 MB at 32k x 576 fp32: not held beside the logits and their softmax (peak memory)
    return torch.softmax(logits, dim=-1)  # fused: in-place exp/normalise passes measured 1.6x slower


def full_vocab_argmax(last_hidden: torch.Tensor, lm_head_weight: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """argmax of the full target logits, in row chunks so [B*T, V_target] never exists at once."""
    flat = last_hidden.reshape(-1, last_hidden.shape[-1])
    out = torch.cat([(flat[i:i + chunk] @ lm_head_weight.t()).argmax(-1) for i in range(0, flat.shape[0], chunk)])
    return out.reshape(last_hidden.shape[:-1])


class HFTargetBackend(TargetBackend):
    """A HF causal LM run online; aux states come from `output_hidden_states`."""

    def __init__(self, model: Any, aux_layer_ids: list[int] | None = None):
        self.model = model.eval().requires_grad_(False)
        self.config = model.config
        self.aux_layer_ids = resolve_aux_layer_ids(self.config.num_hidden_layers, aux_layer_ids)

    @classmethod
    def from_asset(cls, name: str, *, aux_layer_ids: list[int] | None = None, device: Any = None,
                   dtype: Any = None) -> HFTargetBackend:
        from runtime.assets import load_model

        return cls(load_model(name, dtype=dtype, device=device), aux_layer_ids)

    def embedding_weight(self) -> torch.Tensor:
        return self.model.get_input_embeddings().weight.detach()

    @torch.no_grad()
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, t2d: torch.Tensor) -> TargetOutputs:
        out = self.model.model(input_ids=input_ids, attention_mask=attention_mask.long(), output_hidden_states=True)
        hs = out.hidden_states  # hs[k] = residual after k layers for k < L; hs[L] = final normed state
        aux = torch.cat([hs[k] for k in self.aux_layer_ids], dim=-1)
        last = out.last_hidden_state
        head = self.model.get_output_embeddings().weight.detach()
        probs = restricted_probs(last, head, t2d.to(last.device))
        return TargetOutputs(aux_hidden=aux, last_hidden=last, target_probs=probs,
                             target_argmax=full_vocab_argmax(last, head))
