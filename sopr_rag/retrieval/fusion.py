"""Rank fusion: reciprocal-rank fusion and min-max score normalisation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def rrf(rankings: Sequence[Sequence[str]], k: int = 60) -> list[tuple[str, float]]:
    """Reciprocal-rank fusion (Cormack et al. 2009): score(d) = sum_r 1 / (k + rank_r(d)), rank from 1.

    Ties are broken by first appearance so the output is deterministic.
    """
    return wrrf(rankings, [1.0] * len(rankings), k)


def wrrf(rankings: Sequence[Sequence[str]], weights: Sequence[float], k: int = 60) -> list[tuple[str, float]]:
    """Weighted RRF: score(d) = sum_r w_r / (k + rank_r(d)); `rrf` is the case w_r = 1. Deterministic ties."""
    if len(rankings) != len(weights):
        raise ValueError(f"{len(rankings)} rankings but {len(weights)} weights")
    if k < 0:
        raise ValueError("rrf k must be >= 0")
    scores: dict[str, float] = {}
    for ranking, w in zip(rankings, weights):
        # A doc listed twice in one ranking votes once, at its best rank.
        for rank, doc in enumerate(dict.fromkeys(ranking), start=1):
            scores[doc] = scores.get(doc, 0.0) + w / (k + rank)
    order = {d: i for i, d in enumerate(scores)}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))


def by_score(scores: Mapping[str, float] | Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """(doc, score) pairs best first, ties broken by doc id (deterministic)."""
    items = scores.items() if isinstance(scores, Mapping) else scores
    return sorted(items, key=lambda kv: (-kv[1], kv[0]))


def minmax(scores: Mapping[str, float]) -> dict[str, float]:
    """Rescale to [0, 1]; all-equal scores map to 1.0 (every candidate equally good), empty stays empty."""
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    if hi - lo <= 1e-12:
        return {d: 1.0 for d in scores}
    return {d: (s - lo) / (hi - lo) for d, s in scores.items()}


def tied_ranks(scores: Mapping[str, float]) -> dict[str, int]:
    """Competition ranks from 1 ("1224"): equal scores share the best rank, so a vote never depends on doc ids."""
    ranks: dict[str, int] = {}
    prev, rank = None, 0
    for i, (doc, s) in enumerate(by_score(scores), start=1):
        if s != prev:
            prev, rank = s, i
        ranks[doc] = rank
    return ranks
