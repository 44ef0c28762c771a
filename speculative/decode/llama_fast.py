"""A batch-1 Llama-family forward (Llama, Qwen2) for the speculative engine's target: the same math as HF's, with
a few large ops per layer and a KV cache that is allocated once, not concatenated per step.

Why not HF's forward: at batch 1 on a CPU, a decode step is ~15 ms of weight streaming plus HF's per-layer
Python (~40 small ops per layer, a DynamicCache `torch.cat` per layer per step, a 4D mask). Here a layer is
6 ops, all from runtime.ops: residual+RMSNorm, one QKV projection (q/k/v weights concatenated once),
`decode_attention` (RoPE, cache write, tree-masked attention in one call), o_proj, residual+RMSNorm,
`decode_swiglu` (gate and up in one weight pass), down. Linears use the csrc small-M kernel for 1..8 rows.

The cache holds entries in feed order (tree nodes included); `keep` compacts accepted entries in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from runtime.ops import decode_attention, decode_linear, decode_rmsnorm_residual, decode_swiglu

CACHE_BLOCK = 256  # cache capacity grows in these steps (a copy of the cache per growth, not per token)


@dataclass(frozen=True)
class LlamaDims:
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    eps: float

    @classmethod
    def from_config(cls, cfg) -> LlamaDims:
        heads = cfg.num_attention_heads
        return cls(layers=cfg.num_hidden_layers, hidden=cfg.hidden_size, heads=heads,
                   kv_heads=cfg.num_key_value_heads or heads,
                   head_dim=getattr(cfg, "head_dim", None) or cfg.hidden_size // heads,
                   intermediate=cfg.intermediate_size, vocab=cfg.vocab_size, eps=cfg.rms_norm_eps)


SUPPORTED_TYPES = ("llama", "qwen2")  # Qwen2 = Llama + q/k/v biases (+ optional sliding window, refused below)


def unsupported_reason(model: torch.nn.Module) -> str | None:
    """None when `model` is a Llama-family model this forward reproduces exactly, else why not (HF path then)."""
    cfg = model.config
    layer_types = set(getattr(cfg, "layer_types", None) or ["full_attention"])
    checks = {
        f"model_type '{getattr(cfg, 'model_type', None)}' is not one of {SUPPORTED_TYPES}":
            getattr(cfg, "model_type", None) in SUPPORTED_TYPES,
        "MLP biases": not getattr(cfg, "mlp_bias", False),
        "sliding-window attention": not getattr(cfg, "use_sliding_window", False) and layer_types == {"full_attention"},
        f"activation '{getattr(cfg, 'hidden_act', None)}' is not silu": getattr(cfg, "hidden_act", None) == "silu",
        "not a float32 model": next(model.parameters()).dtype == torch.float32,
    }
    bad = [why for why, ok in checks.items() if not ok]
    return "; ".join(bad) or None


@dataclass
class _Layer:
    in_norm: torch.Tensor
    qkv: torch.Tensor  # [(H + 2 KV) * D, hidden]: q, k, v rows
    qkv_bias: torch.Tensor | None  # Qwen2's q/k/v biases (Llama's attention_bias), concatenated the same way
    o: torch.Tensor
    o_bias: torch.Tensor | None
    post_norm: torch.Tensor
    gate_up: torch.Tensor  # [2 I, hidden]
    down: torch.Tensor


class LlamaDecoder:
    """Weights fused once from a HF Llama (the HF model stays untouched); one sequence at a time."""

    def __init__(self, model: torch.nn.Module, capacity: int = CACHE_BLOCK):
        reason = unsupported_reason(model)
        if reason:
            raise ValueError(f"LlamaDecoder cannot run this model: {reason}")
        self.dims = d = LlamaDims.from_config(model.config)
        inner = model.model
        with torch.no_grad():
            self.layers = [self._fuse(layer) for layer in inner.layers]
            self.embed = inner.embed_tokens.weight.detach()
            self.norm = inner.norm.weight.detach()
            self.head = model.get_output_embeddings().weight.detach()
        self.scale = float(getattr(inner.layers[0].self_attn, "scaling", d.head_dim ** -0.5))
        self._rotary = inner.rotary_emb
        self.device, self.dtype = self.embed.device, self.embed.dtype
        self.kv = torch.empty(0)  # [layers, 2 (k, v), kv_heads, capacity, head_dim]
        self.cos = self.sin = torch.empty(0)  # [capacity, D/2] RoPE tables by position
        self._grow(capacity)

    @staticmethod
    def _fuse(layer) -> _Layer:
        attn, mlp = layer.self_attn, layer.mlp
        qkv = (attn.q_proj, attn.k_proj, attn.v_proj)
        bias = torch.cat([p.bias for p in qkv]).contiguous() if qkv[0].bias is not None else None
        o_bias = attn.o_proj.bias.detach() if attn.o_proj.bias is not None else None
        return _Layer(layer.input_layernorm.weight.detach(), torch.cat([p.weight for p in qkv]).contiguous(), bias,
                      attn.o_proj.weight.detach(), o_bias, layer.post_attention_layernorm.weight.detach(),
                      torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]).contiguous(), mlp.down_proj.weight.detach())

    @property
    def capacity(self) -> int:
        return self.kv.shape[3] if self.kv.dim() == 5 else 0

    def _grow(self, needed: int) -> None:
        """Make room for `needed` cache entries (and rope positions < needed), keeping the cache contents."""
        if needed <= self.capacity:
            return
        d, cap = self.dims, -(-needed // CACHE_BLOCK) * CACHE_BLOCK
        kv = torch.zeros(d.layers, 2, d.kv_heads, cap, d.head_dim, device=self.device, dtype=self.dtype)
        if self.capacity:
            kv[:, :, :, : self.capacity] = self.kv
        self.kv = kv
        self._layer_kv = kv.unbind(0)  # per-layer views, made once (a select per layer per step is not free)
        # HF's own rotary module (so any rope scaling type matches); the two halves of cos/sin are equal
        with torch.no_grad():
            cos, sin = self._rotary(self.embed[:1], torch.arange(cap, device=self.device)[None])
        half = d.head_dim // 2
        self.cos, self.sin = cos[0, :, :half].float().contiguous(), sin[0, :, :half].float().contiguous()

    @torch.inference_mode()
    def forward(self, ids: torch.Tensor, positions: torch.Tensor, past: int, tree_mask: torch.Tensor | None,
                aux_layers: Sequence[int] = (), logits_rows: slice = slice(None)
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Feed T tokens at rope `positions`, writing their keys/values at cache slots past..past+T-1.

        Token i attends to the cache slots < past and to the new tokens j with tree_mask[i, j] (None: causal).
        Returns (logits [rows, V] for `logits_rows`, features [T, len(aux_layers) * hidden] or None), where
        feature k is the residual stream after k layers (vLLM's aux layer ids; 0 = the embeddings)."""
        d = self.dims
        self._grow(past + int(ids.numel()))
        ids, positions = ids.to(self.device), positions.to(self.device)
        x = F.embedding(ids, self.embed)
        resid = torch.zeros_like(x)
        feats: dict[int, torch.Tensor] = {}
        for i, layer in enumerate(self.layers):
            h, resid = decode_rmsnorm_residual(x, resid, layer.in_norm, d.eps)
            if i in aux_layers:
                feats[i] = resid
            qkv = decode_linear(h, layer.qkv)
            if layer.qkv_bias is not None:
                qkv = qkv + layer.qkv_bias
            attn = decode_attention(qkv, self.cos, self.sin, positions, self._layer_kv[i], past, tree_mask, d.heads,
                                    self.scale)
            o = decode_linear(attn, layer.o)
            if layer.o_bias is not None:
                o = o + layer.o_bias
            h, resid = decode_rmsnorm_residual(o, resid, layer.post_norm, d.eps)
            x = decode_linear(decode_swiglu(h, layer.gate_up), layer.down)
        h, _ = decode_rmsnorm_residual(x, resid, self.norm, d.eps)
        logits = decode_linear(h[logits_rows], self.head)
        features = torch.cat([feats[k] for k in aux_layers], dim=-1) if aux_layers else None
        return logits, features

    @torch.inference_mode()
    def keep(self, base: int, kept: Sequence[int]) -> None:
        """Move the entries at slots base + kept[j] to base + j (in place; prefixes need no copy)."""
        if list(kept) == list(range(len(kept))):
            return
        src = base + torch.as_tensor(list(kept), dtype=torch.long, device=self.device)
        self.kv[:, :, :, base: base + len(kept)] = self.kv.index_select(3, src)
