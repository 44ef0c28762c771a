"""Hybrid baseline: reciprocal-rank fusion of whole-document BM25 and dense-chunk document rankings."""

from __future__ import annotations

import time

from sopr_rag.baselines.base import BaselineConfig, to_result
from sopr_rag.baselines.dense import DenseRetriever
from sopr_rag.baselines.lexical import BM25Retriever
from sopr_rag.retrieval.fusion import rrf
from sopr_rag.types import SearchResult


class HybridRetriever:
    name = "hybrid"

    def __init__(self, lexical: BM25Retriever, dense: DenseRetriever, cfg: BaselineConfig):
        self.lexical, self.dense, self.cfg = lexical, dense, cfg
        self.procedures = lexical.procedures

    def rank(self, query: str) -> list[tuple[str, float]]:
        lex = [d for d, _ in self.lexical.rank(query)][: self.cfg.candidate_k]
        den = [d for d, _ in self.dense.rank(query)][: self.cfg.candidate_k]
        return rrf([lex, den], k=self.cfg.rrf_k)

    def search(self, query: str, top_k: int = 10) -> SearchResult:
        t0 = time.perf_counter()
        return to_result(query, self.rank(query), self.procedures, top_k, (time.perf_counter() - t0) * 1e3)
