"""Retrieval and step metrics: Hit@k, Recall@k, MRR, nDCG@10, ordered-step matching.

Gold steps in query files are paraphrases of the document's steps, so a gold step "matches" a
returned step when most of its content words (stemmed, stop words removed) occur in it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from sopr_rag.retrieval.lexical import tokenize

KS = (1, 3, 5, 10)
STEP_MATCH_MIN = 0.5  # fraction of a gold step's content words the matching step must contain


def hit_at(ranked: Sequence[str], gold: set[str], k: int) -> float:
    return float(any(d in gold for d in ranked[:k]))


def recall_at(ranked: Sequence[str], gold: set[str], k: int) -> float:
    return len(gold & set(ranked[:k])) / len(gold) if gold else 0.0


def reciprocal_rank(ranked: Sequence[str], gold: set[str]) -> float:
    return next((1.0 / i for i, d in enumerate(ranked, start=1) if d in gold), 0.0)


def ndcg_at(ranked: Sequence[str], gold: set[str], k: int = 10) -> float:
    """Binary-relevance nDCG."""
    dcg = sum(1.0 / math.log2(i + 1) for i, d in enumerate(ranked[:k], start=1) if d in gold)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(gold), k) + 1))
    return dcg / ideal if ideal else 0.0


def retrieval_metrics(ranked: Sequence[str], gold: Sequence[str]) -> dict[str, float]:
    g = set(gold)
    out = {f"hit@{k}": hit_at(ranked, g, k) for k in KS}
    out.update({f"recall@{k}": recall_at(ranked, g, k) for k in KS})
    out["mrr"] = reciprocal_rank(ranked, g)
    out["ndcg@10"] = ndcg_at(ranked, g, 10)
    return out


def step_similarity(gold_step: str, candidate: str) -> float:
    """Fraction of the gold step's content words present in the candidate text."""
    want = set(tokenize(gold_step))
    if not want:
        return 0.0
    return len(want & set(tokenize(candidate))) / len(want)


def ordered_matches(gold_steps: Sequence[str], candidates: Sequence[str], threshold: float = STEP_MATCH_MIN) -> int:
    """Most gold steps matchable, in gold order, to candidates at non-decreasing positions.

    Two gold steps may match the same candidate (one written step often holds two actions), but a
    gold step may never match a candidate earlier than the one its predecessor matched.
    """
    n, m = len(gold_steps), len(candidates)
    if not n or not m:
        return 0
    ok = [[step_similarity(g, c) >= threshold for c in candidates] for g in gold_steps]
    f = [[0] * (m + 1) for _ in range(n + 1)]  # f[i][j]: first i gold steps, candidates[:j]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            f[i][j] = max(f[i][j - 1], f[i - 1][j], f[i - 1][j] + ok[i - 1][j - 1])
    return f[n][m]


def step_metrics(gold_steps: Sequence[str], returned_steps: Sequence[str]) -> dict[str, float]:
    """step_acc: every gold step found, in order (0/1); step_recall_ordered: fraction found in order."""
    if not gold_steps:
        return {}
    found = ordered_matches(gold_steps, returned_steps)
    return {"step_acc": float(found == len(gold_steps)), "step_recall_ordered": found / len(gold_steps)}


def answer_segments(answer: str) -> list[str]:
    """Split a free-text answer into step-sized pieces: lines, then sentences."""
    pieces = []
    for line in answer.splitlines():
        pieces += [s for s in re.split(r"(?<=[.!?;])\s+", line) if s.strip()]
    return pieces


def execution_score(gold_steps: Sequence[str], answer: str) -> float:
    """Fraction of gold steps present, in the right order, in the answer text."""
    if not gold_steps:
        return 0.0
    return ordered_matches(gold_steps, answer_segments(answer)) / len(gold_steps)


def mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else float("nan")
