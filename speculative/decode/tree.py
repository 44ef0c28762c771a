"""Draft trees: chain (top-1) and EAGLE-2 dynamic trees, plus the tensors the target needs to verify them.

Node 0 is the root: the last token the target produced, not yet in its KV cache. Drafted nodes follow,
each with a parent index (< its own index), a depth (root = 0) and a cumulative draft log-prob.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch


class Drafter(Protocol):
    """What tree building needs from a draft model (see speculative/decode/drafters.py)."""

    def expand(self, tokens: torch.Tensor, parents: list[int]) -> torch.Tensor:
        """Feed drafted nodes (ids into this draft tree, -1 = the root's slot) and return their next-token
        log-probs [k, V] over the target vocabulary. Node ids are assigned in call order starting at 0."""


@dataclass
class DraftTree:
    tokens: torch.Tensor  # [N+1] long, root first
    parents: list[int]  # parent index per node, -1 for the root
    depths: torch.Tensor  # [N+1] long

    @property
    def size(self) -> int:
        return int(self.tokens.numel())

    def ancestor_mask(self) -> torch.Tensor:
        """[N+1, N+1] bool: row i attends to column j iff j is i or an ancestor of i."""
        n = self.size
        mask = torch.zeros(n, n, dtype=torch.bool)
        for i in range(n):
            mask[i, i] = True
            p = self.parents[i]
            if p >= 0:
                mask[i] |= mask[p]  # parents come first, so their rows are complete
        return mask

    def children(self) -> list[list[int]]:
        kids: list[list[int]] = [[] for _ in range(self.size)]
        for i, p in enumerate(self.parents):
            if p >= 0:
                kids[p].append(i)
        return kids

    def path_to(self, node: int) -> list[int]:
        path = []
        while node >= 0:
            path.append(node)
            node = self.parents[node]
        return path[::-1]


def build_tree(root_token: int, root_logprobs: torch.Tensor, drafter: Drafter, *, depth: int, topk: int,
               num_draft_tokens: int, min_prob: float = 0.0) -> DraftTree:
    """EAGLE-2 dynamic tree (chain when topk == 1).

    Depth 1 candidates are the top-k of the root distribution. At each further depth the top-k frontier
    nodes by cumulative log-prob are fed to the drafter and each proposes its top-k children; of those
    k*k, the best k form the next frontier. Finally all candidates are reranked by cumulative log-prob and
    the best `num_draft_tokens` kept. Child scores never exceed their parent's, so the kept set is closed
    under ancestors (ties are broken towards shallower nodes).

    `min_prob` > 0 is a confidence cut-off (dynamic draft length): candidates whose cumulative draft
    probability is below it are dropped and drafting stops once none is left, so a weak or unsure draft
    spends neither draft forwards nor verification tokens on nodes the target would almost surely reject.
    The tree may then be the root alone (one plain autoregressive step).
    """
    floor = math.log(min_prob) if min_prob > 0 else float("-inf")
    cand_tok: list[int] = []
    cand_parent: list[int] = []  # candidate index of parent, -1 = root
    cand_score: list[float] = []
    cand_depth: list[int] = []
    cand_draft_id: dict[int, int] = {}  # candidate index -> id in the drafter's tree cache

    lp, tok = root_logprobs.float().topk(min(topk, root_logprobs.numel()))
    frontier = []
    for s, t in zip(lp.tolist(), tok.tolist()):
        if s < floor:
            continue
        frontier.append(len(cand_tok))
        cand_tok.append(t), cand_parent.append(-1), cand_score.append(s), cand_depth.append(1)

    next_draft_id = 0
    for _ in range(1, depth):
        if not frontier:
            break
        parents_draft = [cand_draft_id[cand_parent[c]] if cand_parent[c] >= 0 else -1 for c in frontier]
        logprobs = drafter.expand(torch.tensor([cand_tok[c] for c in frontier]), parents_draft)
        for c in frontier:
            cand_draft_id[c] = next_draft_id
            next_draft_id += 1
        k = min(topk, logprobs.shape[-1])
        child_lp, child_tok = logprobs.float().topk(k, dim=-1)
        base = torch.tensor([cand_score[c] for c in frontier])[:, None]
        total = (base + child_lp).flatten()
        best = total.topk(min(topk, total.numel())).indices.tolist()
        new_frontier = []
        for flat in best:
            if float(total[flat]) < floor:
                continue
            row, col = divmod(flat, k)
            new_frontier.append(len(cand_tok))
            cand_tok.append(int(child_tok[row, col])), cand_parent.append(frontier[row])
            cand_score.append(float(total[flat])), cand_depth.append(cand_depth[frontier[row]] + 1)
        frontier = new_frontier

    order = sorted(range(len(cand_tok)), key=lambda c: (-cand_score[c], cand_depth[c], c))[:num_draft_tokens]
    # Emit kept nodes parents-first (sort by depth, then score order) so parent index < child index.
    order.sort(key=lambda c: (cand_depth[c], -cand_score[c], c))
    index = {c: i + 1 for i, c in enumerate(order)}
    tokens, parents, depths = [root_token], [-1], [0]
    for c in order:
        p = cand_parent[c]
        if p >= 0 and p not in index:
            raise AssertionError("draft tree lost an ancestor; scores must be non-increasing along paths")
        tokens.append(cand_tok[c])
        parents.append(index[p] if p >= 0 else 0)
        depths.append(cand_depth[c])
    return DraftTree(torch.tensor(tokens), parents, torch.tensor(depths))


def chain_tree(root_token: int, draft_tokens: list[int]) -> DraftTree:
    """A chain root -> d1 -> d2 ... (used by tests and for fixed drafts)."""
    n = len(draft_tokens)
    return DraftTree(torch.tensor([root_token, *draft_tokens]), [-1] + list(range(n)), torch.arange(n + 1))
