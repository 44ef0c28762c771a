"""Flow expert: step -> next step graph with branch conditions; "what next / before / in which order".

A step matches the query by cosine plus token overlap. The procedure scores the mean of its two best
step matches. The returned path depends on the question's shape: after/next -> the anchor step and
the steps that follow it; before/first -> the steps leading up to the anchor; otherwise the best
matching steps (plus steps the causal expert reached) in document order.
"""

from __future__ import annotations

import re

import numpy as np

from sopr_rag.config import ExpertConfig
from sopr_rag.experts.base import DocArtifacts, Query, cosines, token_overlap
from sopr_rag.types import Procedure

_NEXT = re.compile(r"\b(after|next|then|once|following|afterwards|what now|now what|continue)\b", re.I)
_BEFORE = re.compile(r"\b(before|prior to|first|precede|leading up)\b", re.I)
PATH_MIN_SIM = 0.2


def build_part(proc: Procedure) -> dict:
    """Edges i -> i+1 in written order; a conditional step's incoming edge carries its condition."""
    edges = [[i, i + 1, proc.steps[i + 1].condition] for i in range(len(proc.steps) - 1)]
    return {"next": edges}


def step_matches(query: Query, doc: DocArtifacts, cfg: ExpertConfig) -> np.ndarray:
    cos = cosines(query, doc.vectors.get("steps"))
    lex = np.array([token_overlap(query.tokens, t) for t in doc.step_tokens], dtype=np.float32)
    if len(cos) != len(lex):
        return np.zeros(0, dtype=np.float32)
    return (1 - cfg.flow_lexical_weight) * cos + cfg.flow_lexical_weight * lex


def score(query: Query, docs: list[DocArtifacts], cfg: ExpertConfig) -> dict[str, float]:
    out = {}
    for doc in docs:
        m = np.sort(step_matches(query, doc, cfg))[::-1]
        out[doc.proc.doc_id] = float(m[:2].mean()) if len(m) else 0.0
    return out


def step_path(query: Query, doc: DocArtifacts, cfg: ExpertConfig, max_steps: int,
              reached: list[int] | None = None) -> list[dict]:
    """Ordered steps answering the query inside one procedure, as citation dicts."""
    steps = doc.proc.steps
    if not steps:
        return []
    m = step_matches(query, doc, cfg)
    anchor = int(np.argmax(m))
    chosen: list[int] = []
    if _NEXT.search(query.text):
        chosen = list(range(anchor, min(len(steps), anchor + max_steps)))
    elif _BEFORE.search(query.text):
        chosen = list(range(max(0, anchor - max_steps + 1), anchor + 1))
    if len(chosen) < 2:  # no cue, or the anchor is the last/first step: the cue was about the situation
        ranked = [int(i) for i in np.argsort(-m, kind="stable") if m[i] >= PATH_MIN_SIM or i == anchor]
        chosen = sorted(set(ranked[:max_steps]) | set((reached or [])[:2]))[:max_steps + 2]
    return [{"number": steps[i].number, "text": steps[i].text, "condition": steps[i].condition,
             "doc_id": doc.proc.doc_id, "match": round(float(m[i]), 4)} for i in chosen]
