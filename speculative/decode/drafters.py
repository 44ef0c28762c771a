"""Draft models behind the interface tree building uses (sync the committed context, expand tree nodes).

Both drafters keep their own KV cache: the committed context, then the nodes of the current draft tree in
expansion order. Each tree node attends to the context plus its own ancestors; `sync` drops the tree.

- LMDrafter: any small HF causal LM with the target's vocabulary (a classic draft model; also what the
  tests use, since it needs no trained EAGLE head).
- Eagle3Drafter (speculative/decode/eagle3_drafter.py): the EAGLE-3 head fed with target features.
"""

from __future__ import annotations

import copy

import torch
from transformers import DynamicCache


class TreeCacheState:
    """Bookkeeping shared by drafters: committed length, tree nodes, masks and positions for a forward."""

    def __init__(self) -> None:
        self.committed = 0  # cache entries that belong to the committed context
        self.root_pos = -1  # position of the last committed input (the root's slot)
        self.parents: list[int] = []  # per tree node: parent node id, -1 = root
        self.depths: list[int] = []
        self.rows: list[torch.Tensor] = []  # per tree node: bool ancestor-or-self row over tree nodes

    def start_tree(self) -> None:
        self.parents, self.depths, self.rows = [], [], []

    def add_nodes(self, parents: list[int], dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Register new nodes; returns (positions [k], additive mask [1, 1, k, committed + n_nodes])."""
        n_old, k = len(self.parents), len(parents)
        n_new = n_old + k
        rows = []
        for j, p in enumerate(parents):
            row = torch.zeros(n_new, dtype=torch.bool)
            if p >= 0:
                row[: self.rows[p].numel()] = self.rows[p]
            row[n_old + j] = True
            rows.append(row)
            self.parents.append(p)
            self.depths.append(1 if p < 0 else self.depths[p] + 1)
        self.rows = [torch.cat([r, torch.zeros(n_new - r.numel(), dtype=torch.bool)]) for r in self.rows[:n_old]]
        self.rows += rows
        allowed = torch.cat([torch.ones(k, self.committed, dtype=torch.bool), torch.stack(rows)], dim=1)
        mask = torch.zeros(k, self.committed + n_new, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)
        positions = torch.tensor([self.root_pos + d for d in self.depths[n_old:]])
        return positions, mask[None, None]


def crop_cache(cache: DynamicCache, length: int) -> None:
    for layer in cache.layers:
        if getattr(layer, "keys", None) is not None and layer.keys.numel():
            layer.keys, layer.values = layer.keys[..., :length, :], layer.values[..., :length, :]


class LMDrafter:
    """A small causal LM sharing the target's tokenizer, used as the draft model."""

    needs_features = False

    def __init__(self, model: torch.nn.Module):
        self.model = model.eval()
        self.state = TreeCacheState()
        self.cache: DynamicCache | None = None
        self.forwards = 0

    @property
    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def reset(self) -> None:
        self.cache = DynamicCache(config=self.model.config)
        self.state = TreeCacheState()

    @torch.inference_mode()
    def _run(self, ids: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor | None,
             last_only: bool = False) -> torch.Tensor:
        self.forwards += 1
        out = self.model(input_ids=ids[None].to(self._device), position_ids=positions[None].to(self._device),
                         attention_mask=None if mask is None else mask.to(self._device),
                         past_key_values=self.cache, use_cache=True, logits_to_keep=1 if last_only else 0)
        return torch.log_softmax(out.logits[0].float(), dim=-1).cpu()  # tree building runs on the CPU

    def sync(self, ids: torch.Tensor, features: torch.Tensor | None, start: int) -> torch.Tensor:
        """Commit target tokens at positions start.. (last one = the root); log-probs of the next token."""
        if self.cache is None:
            self.reset()
        crop_cache(self.cache, start)
        n = int(ids.numel())
        logprobs = self._run(ids, torch.arange(start, start + n), None, last_only=True)
        self.state.committed = start + n
        self.state.root_pos = start + n - 1
        self.state.start_tree()
        return logprobs[-1]

    def expand(self, tokens: torch.Tensor, parents: list[int]) -> torch.Tensor:
        positions, mask = self.state.add_nodes(parents, next(self.model.parameters()).dtype)
        return self._run(tokens, positions, mask)


def early_exit_draft(model: torch.nn.Module, layers: int = 8) -> torch.nn.Module:
    """The target's first `layers` decoder layers + its final norm and head, weights shared (no copy):
    a same-vocabulary draft that needs no training (demo, tests, a baseline for trained drafts)."""
    from transformers import AutoModelForCausalLM

    cfg = copy.deepcopy(model.config)
    cfg.num_hidden_layers = layers
    with torch.device("meta"):
        draft = AutoModelForCausalLM.from_config(cfg)
    keep = {k: v for k, v in model.state_dict().items()
            if not k.startswith("model.layers.") or int(k.split(".")[2]) < layers}
    draft.load_state_dict(keep, strict=False, assign=True)
    draft.model.rotary_emb = model.model.rotary_emb  # its inv_freq is a non-persistent buffer
    draft.tie_weights()
    if any(p.is_meta for p in draft.parameters()):
        raise ValueError("early-exit draft: some weights were not found in the target's state dict")
    return draft.eval()
