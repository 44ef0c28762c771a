"""Draft trees: chain (top-1) and EAGLE-2 dynamic trees, plus the tensors the target needs to verify them.

Node 0 is the root: the last token the target produced, not yet in its KV cache. Drafted nodes follow,
each with a parent index (< its own index), a depth (root = 0), a cumulative draft log-confidence and the
drafter(s) that proposed it. Trees from several drafters are merged by token (`merge_chain`), so a token
appears at most once among a node's children: the sampling acceptance rule (decode/accept.py) treats each
child as a distinct deterministic proposal, and a duplicate would only hide the second copy's subtree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch

MODEL, LOOKUP = 1, 2  # DraftTree.sources bit flags: which drafter proposed a node (both = MODEL | LOOKUP)
SOURCE_NAMES = {MODEL: "model", LOOKUP: "lookup", MODEL | LOOKUP: "both"}


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
    scores: list[float] | None = None  # cumulative draft log-confidence per node (root 0.0); None = unknown
    sources: list[int] | None = None  # per node MODEL / LOOKUP flags (root 0); None = all from the model

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

    def source_of(self, node: int) -> int:
        return MODEL if self.sources is None else self.sources[node]

    def _scores(self) -> list[float]:
        return list(self.scores) if self.scores is not None else [0.0] * self.size

    def _sources(self) -> list[int]:
        return list(self.sources) if self.sources is not None else [0] + [MODEL] * (self.size - 1)

    def select(self, keep: list[int]) -> DraftTree:
        """The sub-tree of nodes `keep` (must contain the root and be closed under ancestors), in tree order."""
        keep = sorted(set(keep))
        index = {old: new for new, old in enumerate(keep)}
        if keep[:1] != [0] or any(self.parents[i] >= 0 and self.parents[i] not in index for i in keep):
            raise ValueError("select: the kept nodes must include the root and every kept node's parent")
        scores, sources = self._scores(), self._sources()
        return DraftTree(self.tokens[keep], [index[self.parents[i]] if i else -1 for i in keep], self.depths[keep],
                         [scores[i] for i in keep], [sources[i] for i in keep])


def merge_chain(tree: DraftTree, chain: list[int], chain_scores: list[float], source: int = LOOKUP) -> DraftTree:
    """Hang `chain` (root -> c1 -> c2 ...) into `tree`, sharing every node whose token is already a child of the
    current node (that node then carries both sources and the higher score), appending the rest after the
    existing nodes (parents still come first)."""
    tokens, parents, depths = tree.tokens.tolist(), list(tree.parents), tree.depths.tolist()
    scores, sources, kids = tree._scores(), tree._sources(), tree.children()
    cur = 0
    for tok, score in zip(chain, chain_scores):
        nxt = next((c for c in kids[cur] if tokens[c] == tok), None)
        if nxt is None:
            nxt = len(tokens)
            tokens.append(tok), parents.append(cur), depths.append(depths[cur] + 1)
            scores.append(score), sources.append(source), kids.append([])
            kids[cur].append(nxt)
        else:
            sources[nxt] |= source
            # scores stay non-increasing along paths: a chain score never exceeds its chain parent's
            scores[nxt] = max(scores[nxt], score)
        cur = nxt
    return DraftTree(torch.tensor(tokens), parents, torch.tensor(depths), scores, sources)


def chain_nodes(tree: DraftTree, chain: list[int], source: int = LOOKUP) -> int:
    """How many leading tokens of a merged `chain` are still nodes of `tree` (after pruning)."""
    tokens, kids, cur = tree.tokens.tolist(), tree.children(), 0
    for i, tok in enumerate(chain):
        cur = next((c for c in kids[cur] if tokens[c] == tok and tree.source_of(c) & source), -1)
        if cur < 0:
            return i
    return len(chain)


def prune_tree(tree: DraftTree, max_nodes: int | None = None, min_prob: float = 0.0) -> DraftTree:
    """Keep the drafted nodes with score >= log(min_prob), at most `max_nodes` of them, most confident first
    (ties towards shallower nodes). Scores never increase from parent to child, so the kept set is closed
    under ancestors."""
    scores = tree._scores()
    floor = math.log(min_prob) if min_prob > 0 else float("-inf")
    cand = [i for i in range(1, tree.size) if scores[i] >= floor]
    cand.sort(key=lambda i: (-scores[i], int(tree.depths[i]), i))
    if max_nodes is not None:
        cand = cand[:max_nodes]
    if len(cand) == tree.size - 1:
        return tree
    return tree.select([0, *cand])


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
    return DraftTree(torch.tensor(tokens), parents, torch.tensor(depths), [0.0] + [cand_score[c] for c in order],
                     [0] + [MODEL] * len(order))


def chain_tree(root_token: int, draft_tokens: list[int]) -> DraftTree:
    """A chain root -> d1 -> d2 ... (used by tests and for fixed drafts)."""
    n = len(draft_tokens)
    return DraftTree(torch.tensor([root_token, *draft_tokens]), [-1] + list(range(n)), torch.arange(n + 1))
