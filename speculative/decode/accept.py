"""Which drafted tokens the target accepts, and the bonus token it adds.

Greedy: follow the child whose token equals the target's argmax, as deep as possible.
Sampling: at each node the drafted children are deterministic proposals (EAGLE-2 takes the top-k, it does
not sample them), so the draft distribution is a point mass per child. Accepting child x with probability
p(x) / p(remaining), zeroing it on rejection and finally sampling the residual is then exactly a draw from
the target's p: the output distribution equals the target's (tested statistically).
This holds for any fixed list of distinct children, so trees merged from several drafters (EAGLE-3 top-k and
prompt-lookup copies, decode/hybrid.py) stay exact: each proposal is a deterministic function of the context,
and `merge_chain` keeps a token once per parent (a duplicate would be zeroed before its turn, its subtree lost).
"""

from __future__ import annotations

import torch

from speculative.decode.tree import DraftTree


def target_probs(logits: torch.Tensor, temperature: float, top_p: float = 1.0) -> torch.Tensor:
    """The target's sampling distribution(s) over the last dim: temperature, then nucleus (top-p)."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        # keep the smallest prefix whose mass reaches top_p (the token that crosses it is kept)
        drop = (sorted_p.cumsum(-1) - sorted_p) >= top_p
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def sample_token(logits: torch.Tensor, temperature: float, top_p: float = 1.0,
                 generator: torch.Generator | None = None) -> int:
    if temperature == 0.0:
        return int(logits.argmax())
    # sampling runs on the CPU: the engine's generator lives there, and one row is cheap to move
    return int(torch.multinomial(target_probs(logits.cpu(), temperature, top_p), 1, generator=generator))


def accept_greedy(tree: DraftTree, logits: torch.Tensor) -> tuple[list[int], int]:
    """(accepted node indices from the root, bonus token)."""
    best = logits.argmax(-1).tolist()
    tokens = tree.tokens.tolist()
    kids = tree.children()
    path = [0]
    while True:
        want = best[path[-1]]
        nxt = next((c for c in kids[path[-1]] if tokens[c] == want), None)
        if nxt is None:
            return path, want
        path.append(nxt)


def accept_sampling(tree: DraftTree, logits: torch.Tensor, temperature: float, top_p: float = 1.0,
                    generator: torch.Generator | None = None) -> tuple[list[int], int]:
    """(accepted node indices from the root, bonus token), distributed exactly as target sampling."""
    probs = target_probs(logits.cpu(), temperature, top_p)  # CPU: the engine's generator lives there
    tokens = tree.tokens.tolist()
    kids = tree.children()
    path = [0]
    while True:
        p = probs[path[-1]].clone()
        moved = False
        for c in kids[path[-1]]:
            x = tokens[c]
            mass = float(p.sum())
            if mass <= 0:
                break
            if float(torch.rand((), generator=generator)) * mass < float(p[x]):
                path.append(c)
                moved = True
                break
            p[x] = 0.0  # rejected: the residual is p without x
        if not moved:
            return path, int(torch.multinomial(p / p.sum(), 1, generator=generator))
