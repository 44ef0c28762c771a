"""A Llama decoder built from megatron-core tensor-parallel layers, loaded from (and sharded off) a HF checkpoint.

Sharding (megatron's standard Llama layout): q/k/v and gate/up are `ColumnParallelLinear` (heads and
MLP columns split over TP ranks, `gather_output=False`), o/down are `RowParallelLinear`
(`input_is_parallel=True`, summed with an all-reduce), the embedding is a `VocabParallelEmbedding`.
Only all-reduce paths are used: megatron's gathers allocate on the CUDA device and fail on CPU, so the
few gathers needed (head logits, the full embedding) use torch.distributed directly (tp_target.py).
Norms and rotary embeddings are replicated (speculative.model.blocks: bit-identical to transformers' Llama
modules, so the numerics match the HF target).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from speculative.model.blocks import RMSNorm, apply_rotary_pos_emb, rotary_embedding
from speculative.parallel.hf_weights import HFWeights


def megatron_config(tp: int, dtype: torch.dtype) -> Any:
    from megatron.core.model_parallel_config import ModelParallelConfig

    # weights come from the checkpoint: allocate on CPU, skip megatron's (CUDA-RNG) initialisation
    return ModelParallelConfig(tensor_model_parallel_size=tp, use_cpu_initialization=True, params_dtype=dtype,
                               perform_initialization=False)


def _no_init(_: torch.Tensor) -> None:
    return None


class TPAttention(nn.Module):
    def __init__(self, hf: Any, mp: Any, tp: int):
        from megatron.core.tensor_parallel import ColumnParallelLinear, RowParallelLinear

        super().__init__()
        self.head_dim = getattr(hf, "head_dim", None) or hf.hidden_size // hf.num_attention_heads
        kv = hf.num_key_value_heads or hf.num_attention_heads
        if hf.num_attention_heads % tp or kv % tp:
            raise ValueError(f"tensor_parallel={tp} must divide both the {hf.num_attention_heads} attention heads "
                             f"and the {kv} key/value heads")
        self.heads, self.kv_heads = hf.num_attention_heads // tp, kv // tp
        h, d = hf.hidden_size, self.head_dim
        col = dict(config=mp, init_method=_no_init, bias=False, gather_output=False)
        self.q_proj = ColumnParallelLinear(h, hf.num_attention_heads * d, **col)
        self.k_proj = ColumnParallelLinear(h, kv * d, **col)
        self.v_proj = ColumnParallelLinear(h, kv * d, **col)
        self.o_proj = RowParallelLinear(hf.num_attention_heads * d, h, config=mp, init_method=_no_init, bias=False,
                                        input_is_parallel=True, skip_bias_add=True)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q_proj(x)[0].view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x)[0].view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x)[0].view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
        return self.o_proj(attn.transpose(1, 2).reshape(b, t, self.heads * self.head_dim))[0]


class TPMLP(nn.Module):
    def __init__(self, hf: Any, mp: Any):
        from megatron.core.tensor_parallel import ColumnParallelLinear, RowParallelLinear

        super().__init__()
        col = dict(config=mp, init_method=_no_init, bias=False, gather_output=False)
        self.gate_proj = ColumnParallelLinear(hf.hidden_size, hf.intermediate_size, **col)
        self.up_proj = ColumnParallelLinear(hf.hidden_size, hf.intermediate_size, **col)
        self.down_proj = RowParallelLinear(hf.intermediate_size, hf.hidden_size, config=mp, init_method=_no_init,
                                           bias=False, input_is_parallel=True, skip_bias_add=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)[0]) * self.up_proj(x)[0])[0]


class TPDecoderLayer(nn.Module):
    def __init__(self, hf: Any, mp: Any, tp: int):
        super().__init__()
        self.input_layernorm = RMSNorm(hf.hidden_size, eps=hf.rms_norm_eps)
        self.self_attn = TPAttention(hf, mp, tp)
        self.post_attention_layernorm = RMSNorm(hf.hidden_size, eps=hf.rms_norm_eps)
        self.mlp = TPMLP(hf, mp)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


# HF parameter name suffix -> (our module path suffix, split dim or None for replicated)
_LAYER_PARAMS = {
    "input_layernorm.weight": None, "post_attention_layernorm.weight": None,
    "self_attn.q_proj.weight": 0, "self_attn.k_proj.weight": 0, "self_attn.v_proj.weight": 0,
    "self_attn.o_proj.weight": 1, "mlp.gate_proj.weight": 0, "mlp.up_proj.weight": 0, "mlp.down_proj.weight": 1,
}


class TPLlamaModel(nn.Module):
    """HF `LlamaModel` equivalent (no head) whose weights are this rank's TP shard."""

    def __init__(self, hf: Any, tp: int, dtype: torch.dtype = torch.float32):
        from megatron.core.tensor_parallel import VocabParallelEmbedding

        super().__init__()
        mp = megatron_config(tp, dtype)
        self.hf_config, self.tp = hf, tp
        self.embed_tokens = VocabParallelEmbedding(hf.vocab_size, hf.hidden_size, init_method=_no_init, config=mp)
        self.layers = nn.ModuleList(TPDecoderLayer(hf, mp, tp) for _ in range(hf.num_hidden_layers))
        self.norm = RMSNorm(hf.hidden_size, eps=hf.rms_norm_eps)
        head_dim = getattr(hf, "head_dim", None) or hf.hidden_size // hf.num_attention_heads
        self.rotary = rotary_embedding(head_dim, dict(hf.rope_parameters), lambda: hf)
        self.requires_grad_(False)  # the target is frozen

    @torch.no_grad()
    def load_hf(self, weights: HFWeights, tp_rank: int) -> None:
        """Copy this rank's slice of every HF tensor (column splits on dim 0, row splits on dim 1)."""
        def put(param: torch.Tensor, name: str, dim: int | None) -> None:
            src = weights.get(name, dim=dim, part=tp_rank, parts=self.tp)
            if src.shape != param.shape:
                raise ValueError(f"{name}: checkpoint shard {tuple(src.shape)} != model {tuple(param.shape)}")
            param.copy_(src)

        put(self.embed_tokens.weight, "model.embed_tokens.weight", 0)
        put(self.norm.weight, "model.norm.weight", None)
        for i, layer in enumerate(self.layers):
            params = dict(layer.named_parameters())
            for suffix, dim in _LAYER_PARAMS.items():
                put(params[suffix], f"model.layers.{i}.{suffix}", dim)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                capture: list[int]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(residual after k layers for k in `capture`, final normed state); positions 0..T-1 as HF."""
        b, t = input_ids.shape
        x = self.embed_tokens(input_ids)
        pos = torch.arange(t, device=input_ids.device)[None].expand(b, t)
        cos, sin = self.rotary(x, pos)
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        mask = causal[None, None] & attention_mask.bool()[:, None, None, :]
        mask = mask | torch.eye(t, dtype=torch.bool, device=x.device)  # pad queries keep one key (no NaN rows)
        captured = {0: x} if 0 in capture else {}
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, mask)
            if i + 1 in capture:
                captured[i + 1] = x
        return [captured[k] for k in capture], self.norm(x)
