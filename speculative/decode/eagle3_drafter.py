"""EAGLE-3 draft at inference: the trained head from speculative/model/ with a tree-aware KV cache.

`Eagle3Draft.forward` lets a query see every cached key at a position <= its own, which is right for a
chain but not for a tree (siblings share positions). So this runner calls the draft's own pieces
(embed, project_aux, rope, attn_input, qkv, finish, logits) and keeps keys/values with an explicit
ancestor mask. Input pairs follow the training convention: (hidden of position t, token t+1) at rope
position t; the committed context uses the fused target features, tree nodes their parent's pre-norm output.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from speculative.decode.drafters import TreeCacheState
from speculative.model.draft import Eagle3Draft


class Eagle3Drafter:
    needs_features = True

    def __init__(self, draft: Eagle3Draft):
        self.draft = draft.eval()
        self.target_ids = torch.arange(draft.config.draft_vocab_size, device=self._device) + draft.d2t
        self.forwards = 0
        self.reset()

    @property
    def _device(self) -> torch.device:
        return next(self.draft.parameters()).device

    @property
    def _dtype(self) -> torch.dtype:
        return self.draft.fc.weight.dtype

    def reset(self) -> None:
        self.k = self.v = None
        self.state = TreeCacheState()
        self.root_hidden: torch.Tensor | None = None
        self.node_hidden: list[torch.Tensor] = []

    @torch.inference_mode()
    def _run(self, ids: torch.Tensor, hidden: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor):
        """One midlayer pass over new inputs [T]; returns (pre-norm outputs [T, H], draft logits [T, Vd])."""
        self.forwards += 1
        d, dev = self.draft, self._device
        ids, hidden, positions = ids.to(dev)[None], hidden.to(dev, self._dtype)[None], positions.to(dev)[None]
        cos, sin = d.rope(hidden, positions)
        q, k, v = d.midlayer.self_attn.qkv(d.midlayer.attn_input(d.embed(ids), hidden), cos, sin)
        self.k = k if self.k is None else torch.cat([self.k, k], 2)
        self.v = v if self.v is None else torch.cat([self.v, v], 2)
        attn = F.scaled_dot_product_attention(q, self.k, self.v, attn_mask=mask.to(dev), enable_gqa=True)
        pre = d.midlayer.finish(attn, hidden)[0]
        return pre, d.logits(pre).float()

    def _target_logprobs(self, draft_logits: torch.Tensor) -> torch.Tensor:
        """Draft-vocab logits -> log-probs over the target vocab (-inf outside the draft vocab)."""
        lp = torch.log_softmax(draft_logits, dim=-1)
        out = torch.full((*lp.shape[:-1], self.draft.config.vocab_size), float("-inf"), device=lp.device)
        out[..., self.target_ids] = lp
        return out.cpu()

    @torch.inference_mode()
    def sync(self, ids: torch.Tensor, features: torch.Tensor | None, start: int) -> torch.Tensor:
        """Commit pairs (features[i], ids[i+1]) at positions start+i; log-probs of the token after ids[-1]."""
        if features is None or features.shape[0] != ids.numel() - 1:
            raise ValueError("EAGLE-3 sync needs one target feature row per committed token before the root")
        if self.k is not None:  # drop the previous tree (and anything past `start`)
            self.k, self.v = self.k[:, :, :start], self.v[:, :, :start]
        n = features.shape[0]
        hidden = self.draft.project_aux(features.to(self._device, self._dtype))
        causal = torch.ones(n, n, dtype=torch.bool).tril()
        mask = torch.cat([torch.ones(n, start, dtype=torch.bool), causal], dim=1)[None, None]
        pre, logits = self._run(ids[1:], hidden, torch.arange(start, start + n), mask)
        self.state.committed, self.state.root_pos = start + n, start + n - 1
        self.state.start_tree()
        self.root_hidden, self.node_hidden = pre[-1], []
        return self._target_logprobs(logits[-1])

    @torch.inference_mode()
    def expand(self, tokens: torch.Tensor, parents: list[int]) -> torch.Tensor:
        positions, mask = self.state.add_nodes(parents, self._dtype)
        hidden = torch.stack([self.root_hidden if p < 0 else self.node_hidden[p] for p in parents])
        pre, logits = self._run(tokens, hidden, positions, mask)
        self.node_hidden.extend(pre.unbind(0))
        return self._target_logprobs(logits)
