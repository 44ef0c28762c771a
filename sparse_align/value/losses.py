"""Ranking losses and accuracy over candidate sets: values and teacher targets are [N, K] (N positions,
K candidates each). Pairs whose teacher scores differ by <= eps are ties: no pair, no gradient."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def listwise_loss(values: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """ListNet: cross-entropy from softmax(targets / T) to softmax(values), mean over positions.
    Invariant to a constant shift of either side per position, as the steering rule is (it centres V)."""
    target = torch.softmax(targets.float() / temperature, dim=-1)
    return -(target * torch.log_softmax(values.float(), dim=-1)).sum(-1).mean()


def _pairs(targets: torch.Tensor, eps: float) -> torch.Tensor:
    """[N, K, K] bool: candidate i is strictly better than j by the teacher."""
    diff = targets[:, :, None] - targets[:, None, :]
    return diff > eps


def pairwise_loss(values: torch.Tensor, targets: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """RankNet: mean over teacher-ordered pairs (i better than j) of -log sigmoid(V_i - V_j)."""
    better = _pairs(targets.float(), eps)
    if not better.any():
        return values.sum() * 0.0  # keeps the graph: no pair, no gradient
    margin = values.float()[:, :, None] - values.float()[:, None, :]
    return F.softplus(-margin[better]).mean()


@torch.no_grad()
def pairwise_correct(values: torch.Tensor, targets: torch.Tensor, eps: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per position: (pairs V orders as the teacher does, teacher-ordered pairs), both [N].
    A tie in V counts as half right (chance level for a model that cannot tell)."""
    better = _pairs(targets.float(), eps)
    margin = values.float()[:, :, None] - values.float()[:, None, :]
    right = ((margin > 0).float() + 0.5 * (margin == 0).float()) * better
    return right.sum((1, 2)), better.sum((1, 2)).float()


def banded_accuracy(values: torch.Tensor, targets: torch.Tensor, score: torch.Tensor, edges: list[float],
                    eps: float = 0.0) -> dict[str, dict[str, float]]:
    """Pairwise accuracy per band of a junction score (band i: edges[i-1] <= score < edges[i]), and 'all'."""
    right, total = pairwise_correct(values, targets, eps)
    bounds = [float("-inf"), *edges, float("inf")]
    out = {}
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        sel = (score >= lo) & (score < hi)
        n = float(total[sel].sum())
        out[f"[{lo:g},{hi:g})"] = {"acc": float(right[sel].sum()) / n if n else float("nan"), "pairs": n,
                                    "positions": int(sel.sum())}
    n = float(total.sum())
    out["all"] = {"acc": float(right.sum()) / n if n else float("nan"), "pairs": n, "positions": len(score)}
    return out
