"""Hybrid drafter: one draft tree holding the model drafter's candidates (EAGLE-3, or any LMDrafter) and the
prompt-lookup chain, verified in one target forward.

The model builds its EAGLE-2 tree (decode/tree.py), the lookup chain is merged into it by token (a token
proposed by both is one node, flagged as both), and the merged tree is cut to `max_tree_tokens` keeping the
most confident nodes (model: cumulative draft probability; lookup: its measured acceptance rate), after
dropping any node below `min_draft_prob`. So the depth of each source follows its confidence round by
round, and a round with neither a confident model nor a lookup match is a plain AR step.
"""

from __future__ import annotations

import math

import torch

from speculative.decode.config import DecodeConfig
from speculative.decode.lookup import LookupDrafter
from speculative.decode.tree import LOOKUP, DraftTree, build_tree, chain_nodes, merge_chain, prune_tree


class HybridDrafter:
    def __init__(self, model, lookup: LookupDrafter):
        self.model, self.lookup = model, lookup
        self.needs_features = bool(getattr(model, "needs_features", False))

    @property
    def forwards(self) -> int:
        return self.model.forwards

    def reset(self) -> None:
        self.model.reset()
        self.lookup.reset()

    def finish(self, response: list[int]) -> None:
        self.lookup.finish(response)

    def sync(self, ids: torch.Tensor, features: torch.Tensor | None, start: int) -> torch.Tensor:
        self.lookup.sync(ids, None, start)
        return self.model.sync(ids, features, start)

    def draft_tree(self, root: int, root_logprobs: torch.Tensor, cfg: DecodeConfig) -> DraftTree:
        n, chain, scores = self.lookup.propose()
        floor = math.log(cfg.min_draft_prob) if cfg.min_draft_prob > 0 else float("-inf")
        keep = sum(s >= floor for s in scores)  # scores fall along the chain: the kept part is a prefix
        chain, scores = chain[:keep], scores[:keep]
        model_floor = floor
        budget = cfg.max_tree_tokens
        if budget is not None and len(chain) >= budget:
            # the lookup alone fills the budget: model nodes scoring below its budget-th node could not
            # enter the tree, so the drafter need not expand them (saves draft forwards on copy-heavy text)
            model_floor = max(floor, scores[budget - 1])
        tree = build_tree(root, root_logprobs, self.model, depth=cfg.depth, topk=cfg.topk,
                          num_draft_tokens=cfg.num_draft_tokens,
                          min_prob=math.exp(model_floor) if model_floor > float("-inf") else 0.0)
        tree = prune_tree(merge_chain(tree, chain, scores, LOOKUP), budget)
        self.lookup.verified(n, chain[: chain_nodes(tree, chain)])
        return tree
