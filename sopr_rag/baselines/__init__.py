"""Baselines behind the same `Retriever` interface as SOPRAG: bm25, bm25-chunk, dense, hybrid, graph.

They are named and opened only through the method registry, `sopr_rag.retrievers.make_retriever`.
"""

from sopr_rag.baselines.base import BaselineConfig

__all__ = ["BaselineConfig"]
