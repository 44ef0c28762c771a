"""The Llama building blocks of the draft midlayer: RMSNorm, the SwiGLU MLP and rotary embeddings.

Numerically the same as transformers' LlamaRMSNorm / LlamaMLP / LlamaRotaryEmbedding / apply_rotary_pos_emb
(tests/speculative/model/test_blocks.py compares them), with the same parameter names, so exports load
unchanged in vLLM/SGLang. They live here because importing any transformers model module pulls in its
generation stack (sympy, scipy, sklearn, torch.distributed.tensor): ~250 MB of resident memory that an
offline draft-training run, which never runs the target, does not need. Rope types other than "default"
(llama3, yarn, ...) are delegated to transformers' implementation, imported only then.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """y = w * x / rms(x), computed in fp32 and cast back before the weight (as LlamaRMSNorm)."""

    def __init__(self, hidden_size: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.to(torch.float32)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * x.to(dtype)


_ACTIVATIONS = {"silu": F.silu, "swish": F.silu, "gelu": F.gelu,
                "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh")}


class GatedMLP(nn.Module):
    """down(act(gate(x)) * up(x)), bias-free (LlamaMLP's names and layout)."""

    def __init__(self, hidden_size: int, intermediate_size: int, hidden_act: str = "silu"):
        super().__init__()
        if hidden_act not in _ACTIVATIONS:
            raise ValueError(f"hidden_act '{hidden_act}' is not supported; choose from {sorted(_ACTIVATIONS)}")
        self.gate_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.up_proj = nn.Linear(hidden_size, intermediate_size, bias=False)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=False)
        self.act_fn = _ACTIVATIONS[hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class DefaultRotaryEmbedding(nn.Module):
    """cos/sin [B, T, head_dim] for rope_type "default": inv_freq = theta^(-2i/d), computed in fp32."""

    def __init__(self, head_dim: int, rope_theta: float):
        super().__init__()
        inv_freq = 1.0 / (rope_theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        inv = self.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1).to(x.device)
        with torch.autocast(device_type=x.device.type, enabled=False):
            freqs = (inv @ position_ids[:, None, :].float()).transpose(1, 2)
            emb = torch.cat((freqs, freqs), dim=-1)
            cos, sin = emb.cos(), emb.sin()
        return cos.to(x.dtype), sin.to(x.dtype)


def rotary_embedding(head_dim: int, rope_parameters: dict[str, Any], llama_config: Callable[[], Any]) -> nn.Module:
    """Ours for rope_type "default"; transformers' LlamaRotaryEmbedding(llama_config()) for any other type
    (the factory and the transformers import run only then)."""
    kind = rope_parameters.get("rope_type", "default")
    if kind == "default" and float(rope_parameters.get("partial_rotary_factor", 1.0)) == 1.0:
        return DefaultRotaryEmbedding(head_dim, float(rope_parameters.get("rope_theta", 10000.0)))
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    return LlamaRotaryEmbedding(llama_config())


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary_pos_emb(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor,
                         sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q, k [B, heads, T, D]; cos, sin [B, T, D] (broadcast over heads)."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
