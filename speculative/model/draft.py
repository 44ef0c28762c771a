"""EAGLE-3 draft: one Llama-style midlayer on top of the target's fused aux hidden states.

Contract used by speculative/decode/ and speculative/export/ (keep names stable):

- `Eagle3DraftConfig.from_target(target_hf_config, draft_vocab_size, aux_layer_ids=None)` copies every
  architecture field from the target (hidden, heads, kv heads, head_dim, intermediate, rope, max positions,
  rms eps) so none can silently differ; `aux_layer_ids` use vLLM's convention (see target/layers.py).
- `Eagle3Draft(config, embed_weight=None)` submodules, named as the exported keys:
  `fc` (3*H_t -> H, no bias), `midlayer.{input_layernorm, hidden_norm, self_attn.{q,k,v,o}_proj,
  post_attention_layernorm, mlp.{gate,up,down}_proj}`, `norm`, `lm_head` (H -> draft vocab); buffers
  `d2t` (int64, target_id = draft_id + d2t[draft_id]) and `t2d` (bool [V_target]), and `aux_scale`
  ([3*H_t], fixed fc-input scale, folded into `fc` by `export_state_dict`). `embed_tokens` is the
  target's embedding, frozen and never exported (the `embed_weight` tensor itself when dtype and device
  match, so callers must not modify it in place).
- Inference, step by step:
      h = draft.project_aux(aux)                      # [B, T, 3*H_t] -> [B, T, H]   (target states)
      pre = draft(input_ids, h, position_ids, cache)  # token t+1 with hidden of position t
      logits = draft.logits(pre)                      # [.., draft_vocab]; ids -> draft.draft_to_target(ids)
      next hidden for a chained step = `pre` (the pre-norm output, as vLLM feeds back)
  `DraftKVCache` keeps keys with their rope positions; a query sees every cached key whose position is
  <= its own (`cache.truncate(n)` drops rejected speculative entries).
- Training-time test: `forward_ttt(...)` (see train/ttt.py) with the mask from model/masks.py.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import model_validator
from torch import nn

from runtime.config import StrictModel
from speculative.model.blocks import GatedMLP, RMSNorm, apply_rotary_pos_emb, rotary_embedding
from speculative.model.masks import ttt_dense_mask, ttt_flex_block_mask
from speculative.target.layers import resolve_aux_layer_ids


class Eagle3DraftConfig(StrictModel):
    hidden_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    rms_norm_eps: float
    hidden_act: str = "silu"
    rope_parameters: dict[str, Any]
    max_position_embeddings: int
    vocab_size: int  # the target vocabulary (embedding rows)
    draft_vocab_size: int
    target_hidden_size: int
    target_num_layers: int
    aux_layer_ids: list[int]  # vLLM convention: residual after k target layers

    @model_validator(mode="after")
    def _check(self) -> Eagle3DraftConfig:
        if not 0 < self.draft_vocab_size <= self.vocab_size:
            raise ValueError(f"draft_vocab_size {self.draft_vocab_size} must be in [1, vocab_size={self.vocab_size}]")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        resolve_aux_layer_ids(self.target_num_layers, self.aux_layer_ids)
        return self

    @classmethod
    def from_target(cls, target: Any, draft_vocab_size: int, aux_layer_ids: list[int] | None = None,
                    intermediate_size: int | None = None) -> Eagle3DraftConfig:
        """Derive from a HF target config (object or dict); the draft keeps the target's width. `intermediate_size`
        narrows the draft's MLP (None = the target's): the shipped-size lever for wide targets."""
        get = target.get if isinstance(target, dict) else lambda k, d=None: getattr(target, k, d)
        heads = get("num_attention_heads")
        rope = get("rope_parameters") or {"rope_type": "default", "rope_theta": get("rope_theta", 10000.0)}
        layers = get("num_hidden_layers")
        return cls(hidden_size=get("hidden_size"), num_attention_heads=heads,
                   num_key_value_heads=get("num_key_value_heads") or heads,
                   head_dim=get("head_dim") or get("hidden_size") // heads,
                   intermediate_size=intermediate_size or get("intermediate_size"), rms_norm_eps=get("rms_norm_eps"),
                   hidden_act=get("hidden_act", "silu"), rope_parameters=dict(rope),
                   max_position_embeddings=get("max_position_embeddings"), vocab_size=get("vocab_size"),
                   draft_vocab_size=min(draft_vocab_size, get("vocab_size")),
                   target_hidden_size=get("hidden_size"), target_num_layers=layers,
                   aux_layer_ids=resolve_aux_layer_ids(layers, aux_layer_ids))

    def llama_config(self) -> Any:
        """A 1-layer transformers LlamaConfig view (for rope types our blocks delegate to transformers)."""
        from transformers import LlamaConfig

        return LlamaConfig(vocab_size=self.vocab_size, hidden_size=self.hidden_size,
                           intermediate_size=self.intermediate_size, num_hidden_layers=1,
                           num_attention_heads=self.num_attention_heads, num_key_value_heads=self.num_key_value_heads,
                           head_dim=self.head_dim, hidden_act=self.hidden_act, rms_norm_eps=self.rms_norm_eps,
                           max_position_embeddings=self.max_position_embeddings,
                           rope_parameters=dict(self.rope_parameters))


@dataclass
class DraftKVCache:
    """Midlayer keys/values [B, kv_heads, S, head_dim] with their rope positions [B, S]."""

    k: torch.Tensor | None = None
    v: torch.Tensor | None = None
    pos: torch.Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def append(self, k: torch.Tensor, v: torch.Tensor, pos: torch.Tensor) -> None:
        if self.k is None:
            self.k, self.v, self.pos = k, v, pos
        else:
            self.k = torch.cat([self.k, k], 2)
            self.v = torch.cat([self.v, v], 2)
            self.pos = torch.cat([self.pos, pos], 1)

    def __len__(self) -> int:
        return 0 if self.k is None else self.k.shape[2]

    def truncate(self, length: int) -> None:
        """Keep the first `length` entries (drop rejected speculative tokens)."""
        if self.k is not None:
            self.k, self.v, self.pos = self.k[:, :, :length], self.v[:, :, :length], self.pos[:, :length]


class DraftAttention(nn.Module):
    """GQA attention whose q/k/v read the 2H-wide [embedding ; hidden] concatenation."""

    def __init__(self, cfg: Eagle3DraftConfig):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.q_proj = nn.Linear(2 * cfg.hidden_size, self.heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(2 * cfg.hidden_size, self.kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(2 * cfg.hidden_size, self.kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.heads * self.head_dim, cfg.hidden_size, bias=False)

    def qkv(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        return q, k, v

    def out(self, attn: torch.Tensor) -> torch.Tensor:
        b, _, t, _ = attn.shape
        return self.o_proj(attn.transpose(1, 2).reshape(b, t, self.heads * self.head_dim))


class Eagle3Midlayer(nn.Module):
    def __init__(self, cfg: Eagle3DraftConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps)
        self.hidden_norm = RMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps)
        self.self_attn = DraftAttention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, eps=cfg.rms_norm_eps)
        self.mlp = GatedMLP(cfg.hidden_size, cfg.intermediate_size, cfg.hidden_act)

    def attn_input(self, embeds: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.input_layernorm(embeds), self.hidden_norm(hidden)], dim=-1)

    def finish(self, attn: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """o_proj + residual (the un-normed input hidden, as vLLM) + SwiGLU MLP -> pre-norm output."""
        h = residual + self.self_attn.out(attn)
        return h + self.mlp(self.post_attention_layernorm(h))


class Eagle3Draft(nn.Module):
    def __init__(self, config: Eagle3DraftConfig, embed_weight: torch.Tensor | None = None):
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        if embed_weight is not None:
            if tuple(embed_weight.shape) != (config.vocab_size, config.hidden_size):
                raise ValueError(f"embedding shape {tuple(embed_weight.shape)} != "
                                 f"({config.vocab_size}, {config.hidden_size})")
            own = self.embed_tokens.weight
            if embed_weight.device == own.device and embed_weight.is_floating_point():
                # shared, not copied: frozen, and one [V, H] table less in memory (113 MB for SmolLM2); kept in
                # its own dtype (a bf16 table under precision=bf16 is half the size), `embed` casts the rows
                self.embed_tokens.weight = nn.Parameter(embed_weight.detach(), requires_grad=False)
            else:
                own.data.copy_(embed_weight)
        self.embed_tokens.weight.requires_grad_(False)  # the target's embedding, frozen
        self.fc = nn.Linear(3 * config.target_hidden_size, config.hidden_size, bias=False)
        self.midlayer = Eagle3Midlayer(config)
        self.norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.draft_vocab_size, bias=False)
        self.rotary = rotary_embedding(config.head_dim, config.rope_parameters, config.llama_config)
        # fixed per-input-channel scale of the fc input (the aux layers' residual streams differ ~10x in
        # RMS); folded into fc.weight at export, so exports keep the unchanged vLLM/SGLang format
        self.register_buffer("aux_scale", torch.ones(3 * config.target_hidden_size))
        self.register_buffer("d2t", torch.zeros(config.draft_vocab_size, dtype=torch.int64))
        self.register_buffer("t2d", torch.zeros(config.vocab_size, dtype=torch.bool))
        self.set_vocab_mapping(*identity_vocab_mapping(config.draft_vocab_size, config.vocab_size))

    # ------------------------------------------------------------------ pieces
    def set_vocab_mapping(self, d2t: torch.Tensor, t2d: torch.Tensor) -> None:
        if d2t.shape != self.d2t.shape or t2d.shape != self.t2d.shape:
            raise ValueError(f"vocab mapping shapes d2t {tuple(d2t.shape)} t2d {tuple(t2d.shape)} do not match "
                             f"draft vocab {self.d2t.shape[0]} / target vocab {self.t2d.shape[0]}")
        if int(t2d.sum()) != d2t.shape[0] or not torch.equal(torch.nonzero(t2d)[:, 0], draft_target_ids(d2t)):
            raise ValueError("d2t and t2d disagree (t2d must mark exactly the target ids of d2t, ascending)")
        self.d2t.copy_(d2t)
        self.t2d.copy_(t2d)

    def init_head_from_target(self, head_weight: torch.Tensor, norm_weight: torch.Tensor) -> None:
        """Start the output side where the target's is: lm_head = the target's head rows of the draft vocab
        (set the vocab mapping first), norm = the target's final norm. The draft then only has to learn a
        hidden state in the target's output space, not 8k x H head weights from a few hundred k tokens."""
        if head_weight.shape != (self.config.vocab_size, self.config.hidden_size):
            raise ValueError(f"target head {tuple(head_weight.shape)} != "
                             f"({self.config.vocab_size}, {self.config.hidden_size})")
        with torch.no_grad():
            self.lm_head.weight.copy_(head_weight[self.t2d.to(head_weight.device)])
            self.norm.weight.copy_(norm_weight)

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """Everything but the frozen target embedding (what checkpoints and exports hold)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith(("embed_tokens.", "rotary."))}

    def set_aux_scale(self, scale: torch.Tensor) -> None:
        if scale.shape != self.aux_scale.shape or not bool(torch.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError(f"aux_scale must be {tuple(self.aux_scale.shape)} finite positive values")
        self.aux_scale.copy_(scale)

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """`trainable_state_dict` with `aux_scale` folded into `fc.weight` (fc(x * s) = (W diag(s)) x)."""
        out = self.trainable_state_dict()
        scale = out.pop("aux_scale")
        out["fc.weight"] = out["fc.weight"] * scale.to(out["fc.weight"].dtype)[None, :]
        return out

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings in the draft's dtype (the shared target table may be stored narrower)."""
        return self.embed_tokens(input_ids).to(self.fc.weight.dtype)

    def project_aux(self, aux_hidden: torch.Tensor) -> torch.Tensor:
        """Fuse the 3 target aux states [.., 3*H_t] into the draft width [.., H]."""
        return self.fc(aux_hidden * self.aux_scale.to(aux_hidden.dtype))

    def rope(self, hidden: torch.Tensor, position_ids: torch.Tensor):
        return self.rotary(hidden, position_ids)

    def logits(self, prenorm: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.norm(prenorm))

    def draft_to_target(self, draft_ids: torch.Tensor) -> torch.Tensor:
        return draft_ids + self.d2t[draft_ids]

    # ------------------------------------------------------------------ inference step
    def forward(self, input_ids: torch.Tensor, hidden: torch.Tensor, position_ids: torch.Tensor,
                cache: DraftKVCache | None = None, input_embeds: torch.Tensor | None = None) -> torch.Tensor:
        """One draft pass over new tokens [B, T]; returns the pre-norm output [B, T, H].

        `hidden` is `project_aux(target aux)` or a previous pre-norm output. With `cache`, the new keys
        are appended and each query sees every key at a position <= its own.
        """
        embeds = self.embed(input_ids) if input_embeds is None else input_embeds
        cos, sin = self.rope(hidden, position_ids)
        q, k, v = self.midlayer.self_attn.qkv(self.midlayer.attn_input(embeds, hidden), cos, sin)
        if cache is None:
            cache = DraftKVCache()
        cache.append(k, v, position_ids)
        mask = (cache.pos[:, None, None, :] <= position_ids[:, None, :, None])  # [B, 1, T, S]
        attn = F.scaled_dot_product_attention(q, cache.k, cache.v, attn_mask=mask, enable_gqa=True)
        return self.midlayer.finish(attn, hidden)

    # ------------------------------------------------------------------ training-time test
    def forward_ttt(self, embeds: torch.Tensor, hidden: torch.Tensor, position_ids: torch.Tensor,
                    kv_blocks: list[tuple[torch.Tensor, torch.Tensor]], key_padding: torch.Tensor | None = None,
                    attn_impl: str = "sdpa") -> torch.Tensor:
        """TTT step k = len(kv_blocks): attend block 0 causally and this chain's own keys (masks.py)."""
        prenorm, k, v = self.ttt_step(embeds, hidden, position_ids, tuple(kv_blocks), key_padding, attn_impl)
        kv_blocks.append((k, v))
        return prenorm

    def ttt_step(self, embeds: torch.Tensor, hidden: torch.Tensor, position_ids: torch.Tensor,
                 kv_prev: tuple[tuple[torch.Tensor, torch.Tensor], ...], key_padding: torch.Tensor | None = None,
                 attn_impl: str = "sdpa") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """forward_ttt without the side effect: (prenorm, this step's k, v) from the earlier steps' blocks, so
        a step can be recomputed in backward (activation checkpointing) and give the same result."""
        b, t, _ = embeds.shape
        cos, sin = self.rope(hidden, position_ids)
        q, k, v = self.midlayer.self_attn.qkv(self.midlayer.attn_input(embeds, hidden), cos, sin)
        step = len(kv_prev)
        keys = torch.cat([kb for kb, _ in kv_prev] + [k], 2)
        values = torch.cat([vb for _, vb in kv_prev] + [v], 2)
        if attn_impl == "flex":
            block_mask = ttt_flex_block_mask(t, step, key_padding, embeds.device)
            attn = _flex_attention(embeds.device)(q, keys, values, block_mask=block_mask, enable_gqa=True)
        elif attn_impl == "sdpa":
            mask = ttt_dense_mask(t, step, key_padding).to(embeds.device)
            attn = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, enable_gqa=True)
        else:
            raise ValueError(f"unknown attn_impl '{attn_impl}' (sdpa | flex)")
        return self.midlayer.finish(attn, hidden), k, v


@functools.cache
def _flex_attention(device: torch.device):
    """flex_attention, compiled on CUDA (fused kernel); eager elsewhere (CPU has no flex backward)."""
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention) if device.type == "cuda" else flex_attention


def draft_target_ids(d2t: torch.Tensor) -> torch.Tensor:
    return torch.arange(d2t.shape[0], device=d2t.device) + d2t


def identity_vocab_mapping(draft_vocab: int, target_vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Placeholder mapping (draft id i = target id i) until the data-derived one is set."""
    t2d = torch.zeros(target_vocab, dtype=torch.bool)
    t2d[:draft_vocab] = True
    return torch.zeros(draft_vocab, dtype=torch.int64), t2d
