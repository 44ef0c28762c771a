"""What every expert sees: per-document artifacts (built once at index time) and the encoded query."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sopr_rag.retrieval.lexical import tokenize
from sopr_rag.types import Procedure


@dataclass
class DocArtifacts:
    """One indexed SOP: the parsed procedure, its card text and each expert's graph part + embeddings."""

    proc: Procedure
    card_text: str
    entity: dict[str, Any]  # experts.entity.build_part
    causal: dict[str, Any]  # experts.causal.build_part
    flow: dict[str, Any]  # experts.flow.build_part
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # steps|entities|causal|components -> [n, d]
    card: dict[str, Any] | None = None  # the LLM Procedure Card (cards.schema.LLMCard dump), None: rules only
    step_tokens: list[set[str]] = field(default_factory=list)  # filled on load (lexical step match)
    derived: dict[str, Any] = field(default_factory=dict)  # query-time lookups derived on load, never saved


@dataclass
class Query:
    text: str
    vector: np.ndarray  # [d], L2-normalised
    tokens: set[str]  # stemmed content tokens (retrieval.lexical.tokenize)

    @classmethod
    def encode(cls, text: str, embed_fn) -> Query:
        return cls(text=text, vector=np.asarray(embed_fn([text])[0], dtype=np.float32), tokens=set(tokenize(text)))


def cosines(query: Query, mat: np.ndarray | None) -> np.ndarray:
    if mat is None or len(mat) == 0:
        return np.zeros(0, dtype=np.float32)
    return mat @ query.vector


def token_overlap(query_tokens: set[str], tokens: set[str]) -> float:
    """Share of the query's tokens present in `tokens` (0 when the query has none)."""
    return len(query_tokens & tokens) / len(query_tokens) if query_tokens else 0.0
