"""The one module through which csrc/ kernels (and Triton kernels) reach Python.

    from runtime.ops import soft_cross_entropy
    loss_rows, argmax = soft_cross_entropy(hidden, weight, target_probs)

`soft_cross_entropy(hidden [N,H], weight [V,H], target_probs [N,V])` returns
  loss_rows [N] float32 = -sum_v p[n,v] * log_softmax(hidden[n] @ weight.T)[v]
  argmax    [N] int64   = argmax_v (hidden[n] @ weight.T)   (no grad)
with gradients to `hidden` and `weight`. Implementations: "reference" (pure torch), and the fused
ones added by the kernels issue. `set_impl(name)` / LLMSYS_OPS_IMPL override the automatic choice.
"""

from __future__ import annotations

import os

import torch

_IMPL_OVERRIDE: str | None = None


def set_impl(name: str | None) -> None:
    """Force an implementation ("reference", ...) for tests; None restores automatic choice."""
    global _IMPL_OVERRIDE
    _IMPL_OVERRIDE = name


def current_impl(device: torch.device | None = None) -> str:
    return _IMPL_OVERRIDE or os.environ.get("LLMSYS_OPS_IMPL") or "reference"


def soft_cross_entropy_reference(hidden: torch.Tensor, weight: torch.Tensor,
                                 target_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logits = hidden @ weight.t()
    logp = torch.log_softmax(logits.float(), dim=-1)
    loss = -(target_probs.float() * logp).sum(-1)
    return loss, logits.detach().argmax(-1)


def soft_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor,
                       target_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    impl = current_impl(hidden.device)
    if impl == "reference":
        return soft_cross_entropy_reference(hidden, weight, target_probs)
    raise ValueError(f"unknown soft_cross_entropy implementation '{impl}'")
