"""EAGLE-3 draft at inference: the trained head from speculative/model/ with a tree-aware KV cache.

`Eagle3Draft.forward` lets a query see every cached key at a position <= its own, which is right for a
chain but not for a tree (siblings share positions). So this runner keeps keys/values itself, in a
preallocated cache (entries in feed order: committed context, then the current tree's nodes) with an
explicit ancestor mask, and runs the midlayer as a few runtime.ops calls on weights fused once from the
draft (read at construction: build a new runner after changing the draft's weights):
  x = [rmsnorm(embed(token)) ; rmsnorm(hidden)]   (with their two norm weights)
  attn = decode_attention(x @ Wqkv.T, ...)        (RoPE, cache write, tree mask)
  h = hidden + o_proj(attn);  pre = h + down(swiglu(rmsnorm(h)));  logits = lm_head(rmsnorm(pre))
Input pairs follow the training convention: (hidden of position t, token t+1) at rope position t; the
committed context uses the fused target features (`draft.project_aux`), tree nodes their parent's
pre-norm output.

Weight storage: an exported draft is bf16 (speculative/export), loaded into an fp32 model. Where every
fused weight is exactly a bf16 value and the CPU small-M kernel is there, the runner keeps them in bf16
(fp32 inputs and accumulation, the widening is exact): the same numbers with half the bytes per draft
step, and a draft step at batch 1 is memory-bound. Any other weights stay in the model's dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from runtime.ops import (
    decode_attention,
    decode_linear,
    decode_rmsnorm_residual,
    decode_swiglu,
    small_m_kernel_available,
)
from speculative.decode.drafters import TreeCacheState
from speculative.model.draft import Eagle3Draft

CACHE_BLOCK = 256  # cache capacity grows in these steps


def weight_dtype(weights) -> torch.dtype:
    """bf16 when every weight is a CPU tensor holding bf16 values exactly and the small-M kernel takes bf16
    weights (then storing them in bf16 changes no result), else the weights' own dtype."""
    weights = list(weights)
    dtype = weights[0].dtype
    if dtype == torch.bfloat16 or not all(w.device.type == "cpu" and w.dtype == dtype for w in weights):
        return dtype
    if not small_m_kernel_available():
        return dtype
    exact = all(torch.equal(w.to(torch.bfloat16).to(dtype), w) for w in weights)
    return torch.bfloat16 if exact else dtype


class Eagle3Drafter:
    needs_features = True

    def __init__(self, draft: Eagle3Draft, storage: torch.dtype | None = None):
        """storage: dtype the fused weights are kept in (None: bf16 where lossless, see the module doc)."""
        self.draft = draft.eval()
        cfg = draft.config
        self.heads, self.kv_heads, self.head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.eps, self.vocab = cfg.rms_norm_eps, cfg.vocab_size
        mid, attn = draft.midlayer, draft.midlayer.self_attn
        with torch.no_grad():
            self.in_norms = torch.stack([mid.input_layernorm.weight, mid.hidden_norm.weight]).detach()  # [2, H]
            self.post_norm = mid.post_attention_layernorm.weight.detach()
            self.norm = draft.norm.weight.detach()
            self.embed = draft.embed_tokens.weight.detach()
            # aux_scale folded into fc as the export does (fc(x * s) = (W diag(s)) x)
            fused = {"fc": draft.fc.weight * draft.aux_scale.to(draft.fc.weight.dtype),
                       "qkv": torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight]),
                       "o": attn.o_proj.weight, "gate_up": torch.cat([mid.mlp.gate_proj.weight, mid.mlp.up_proj.weight]),
                       "down": mid.mlp.down_proj.weight, "head": draft.lm_head.weight}
            self.weight_dtype = storage or weight_dtype(fused.values())
            w = {k: v.detach().to(self.weight_dtype).contiguous() for k, v in fused.items()}
        self.w_fc, self.w_qkv, self.w_o = w["fc"], w["qkv"], w["o"]
        self.w_gate_up, self.w_down, self.w_head = w["gate_up"], w["down"], w["head"]
        self.scale = self.head_dim ** -0.5
        self.target_ids = torch.arange(cfg.draft_vocab_size, device=self._device) + draft.d2t
        self.kv = torch.empty(0)  # [2, kv_heads, capacity, head_dim]
        self.cos = self.sin = torch.empty(0)
        self.forwards = 0
        self.reset()

    @property
    def _device(self) -> torch.device:
        return next(self.draft.parameters()).device

    @property
    def _dtype(self) -> torch.dtype:
        return self.draft.fc.weight.dtype

    def reset(self) -> None:
        self.length = 0  # cache entries in use (committed context + current tree nodes)
        self.state = TreeCacheState()
        self.root_hidden: torch.Tensor | None = None
        self.node_hidden: list[torch.Tensor] = []

    def _grow(self, needed: int) -> None:
        capacity = self.kv.shape[2] if self.kv.dim() == 4 else 0
        if needed <= capacity:
            return
        cap = -(-needed // CACHE_BLOCK) * CACHE_BLOCK
        kv = torch.zeros(2, self.kv_heads, cap, self.head_dim, device=self._device, dtype=self._dtype)
        if capacity:
            kv[:, :, :capacity] = self.kv
        self.kv = kv
        with torch.no_grad():  # the draft's own rotary module; the two halves of cos/sin are equal
            cos, sin = self.draft.rope(self.embed[:1], torch.arange(cap, device=self._device)[None])
        half = self.head_dim // 2
        self.cos, self.sin = cos[0, :, :half].float().contiguous(), sin[0, :, :half].float().contiguous()

    @torch.inference_mode()
    def _run(self, ids: torch.Tensor, hidden: torch.Tensor, positions: torch.Tensor, tree_mask: torch.Tensor | None):
        """One midlayer pass over new inputs [T] written at cache slots length..; each sees the slots before
        the last tree_mask.shape[1] ones, and of those the ones its tree_mask row allows (None: causal).
        Returns (pre-norm outputs [T, H], draft logits [T, Vd])."""
        self.forwards += 1
        dev, n = self._device, int(ids.numel())
        self._grow(self.length + n)
        hidden = hidden.to(dev, self._dtype)
        both = torch.stack([F.embedding(ids.to(dev), self.embed), hidden], dim=1)  # [T, 2, H]
        x = (F.rms_norm(both, both.shape[-1:], eps=self.eps) * self.in_norms).view(n, -1)
        attn = decode_attention(decode_linear(x, self.w_qkv), self.cos, self.sin, positions.to(dev), self.kv,
                                self.length, tree_mask, self.heads, self.scale)
        self.length += n
        normed, h = decode_rmsnorm_residual(decode_linear(attn, self.w_o), hidden, self.post_norm, self.eps)
        pre = h + decode_linear(decode_swiglu(normed, self.w_gate_up), self.w_down)
        logits = decode_linear(F.rms_norm(pre, pre.shape[-1:], self.norm, self.eps), self.w_head)
        return pre, logits.float()

    def _target_logprobs(self, draft_logits: torch.Tensor) -> torch.Tensor:
        """Draft-vocab logits -> log-probs over the target vocab (-inf outside the draft vocab)."""
        lp = torch.log_softmax(draft_logits, dim=-1)
        out = torch.full((*lp.shape[:-1], self.vocab), float("-inf"), device=lp.device)
        out[..., self.target_ids] = lp
        return out.cpu()

    @torch.inference_mode()
    def sync(self, ids: torch.Tensor, features: torch.Tensor | None, start: int) -> torch.Tensor:
        """Commit pairs (features[i], ids[i+1]) at positions start+i; log-probs of the token after ids[-1]."""
        if features is None or features.shape[0] != ids.numel() - 1:
            raise ValueError("EAGLE-3 sync needs one target feature row per committed token before the root")
        if start > self.state.committed:
            raise ValueError(f"sync at {start} would leave a gap after the {self.state.committed} committed entries")
        self.length = start  # drop the previous tree (and anything past `start`)
        n = features.shape[0]
        hidden = decode_linear(features.to(self._device, self._dtype), self.w_fc)  # draft.project_aux
        pre, logits = self._run(ids[1:], hidden, torch.arange(start, start + n), None)
        self.state.committed, self.state.root_pos = start + n, start + n - 1
        self.state.start_tree()
        self.root_hidden, self.node_hidden = pre[-1], []
        return self._target_logprobs(logits[-1])

    @torch.inference_mode()
    def expand(self, tokens: torch.Tensor, parents: list[int]) -> torch.Tensor:
        positions, _ = self.state.add_nodes(parents, self._dtype)
        tree = torch.stack(self.state.rows)  # [nodes, nodes] ancestor-or-self rows over this tree's slots
        hidden = torch.stack([self.root_hidden if p < 0 else self.node_hidden[p] for p in parents])
        pre, logits = self._run(tokens, hidden, positions, tree[-len(parents):])
        self.node_hidden.extend(pre.unbind(0))
        return self._target_logprobs(logits)
