"""Causal expert: symptom/condition -> cause -> action chains, scored by how far the query reaches.

Per procedure: symptom nodes (triggers, or the scope when no triggers are written), condition nodes
(preconditions, branch conditions, applicability), cause nodes (stated causes) and action nodes (the
steps). Edges: symptom -> cause -> action, condition -> the step it guards, symptom -> action when no
cause is written. A node is activated by its cosine to the query; a chain scores the mean activation
of its evidence nodes, and the procedure its best chain.

Near-twins (same symptoms, different conditions) share most evidence; the contrast term separates
them: query-token overlap with the procedure's condition/cause text, weighted by IDF computed inside
the pruned set, so words every twin shares count little and the distinguishing condition counts most.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from sopr_rag.config import ExpertConfig
from sopr_rag.experts.base import DocArtifacts, Query, cosines
from sopr_rag.ingest.extract import sentences
from sopr_rag.retrieval.lexical import tokenize
from sopr_rag.types import Procedure

MAX_NODE_CHARS = 300


def build_part(proc: Procedure) -> dict:
    nodes: list[dict] = []

    def add(kind: str, text: str, step: int | None = None) -> int:
        nodes.append({"kind": kind, "text": text[:MAX_NODE_CHARS], "step": step})
        return len(nodes) - 1

    symptoms = [add("symptom", t) for t in proc.triggers] or [add("symptom", s) for s in sentences(proc.scope)[:2]]
    symptoms.append(add("symptom", proc.title))
    causes = [add("cause", c) for c in proc.causes]
    edges: list[list[int]] = []
    for s in symptoms:
        edges += [[s, c] for c in causes]
    conditions = [add("condition", p) for p in proc.preconditions]
    if proc.scope:
        conditions.append(add("condition", proc.scope))
    first_action = 0 if proc.steps else None
    for i, step in enumerate(proc.steps):
        if step.condition:
            edges.append([add("condition", step.condition, step=i), -1 - i])  # negative = action node of step i
    if first_action is not None:
        for src in (causes or symptoms) + conditions:
            edges.append([src, -1 - first_action])
    return {"nodes": nodes, "edges": edges, "contrast_tokens": sorted(set(tokenize(" ".join(
        [proc.title, proc.scope] + proc.triggers + proc.preconditions + proc.causes
        + [s.condition for s in proc.steps if s.condition]))))}


def _pruned_idf(docs: list[DocArtifacts]) -> dict[str, float]:
    df = Counter(t for d in docs for t in d.causal["contrast_tokens"])
    n = len(docs)
    return {t: math.log((n + 1) / (c + 0.5)) for t, c in df.items()}


def score(query: Query, docs: list[DocArtifacts], cfg: ExpertConfig) -> tuple[dict[str, float], dict[str, list[int]]]:
    """(procedure -> causal score, procedure -> step indices its activated chains reach)."""
    idf = _pruned_idf(docs)
    q_idf = sum(idf.get(t, 0.0) for t in query.tokens)
    scores: dict[str, float] = {}
    reached: dict[str, list[int]] = {}
    for doc in docs:
        part = doc.causal
        act = np.clip(cosines(query, doc.vectors.get("causal")), 0.0, None)
        best, steps = 0.0, []
        for src, dst in part["edges"]:
            if dst >= 0:  # symptom -> cause: evidence is both ends
                chain = (act[src] + act[dst]) / 2.0
            else:
                chain = float(act[src])
                if chain > 0.5:
                    steps.append(-1 - dst)
            best = max(best, float(chain))
        contrast = sum(idf[t] for t in query.tokens & set(part["contrast_tokens"])) / q_idf if q_idf > 0 else 0.0
        scores[doc.proc.doc_id] = best + cfg.causal_contrast_weight * contrast
        reached[doc.proc.doc_id] = sorted(set(steps))
    return scores, reached
