"""Baselines behind the same `Retriever` interface as SOPRAG: `get_retriever(method, index)`.

    bm25        bm25s over whole documents
    bm25-chunk  bm25s over heading-aware chunks, document = best chunk
    dense       the index's embedder (MiniLM by default) + FAISS over chunks, document = best chunk
    hybrid      RRF of bm25 and dense
    graph       entity graph + personalised PageRank (HippoRAG / LightRAG style)
"""

from __future__ import annotations

from sopr_rag.baselines.base import BaselineConfig, IndexLike
from sopr_rag.retrieval.dense import EmbedFn
from sopr_rag.types import Retriever

METHODS = ("bm25", "bm25-chunk", "dense", "hybrid", "graph")


def get_retriever(method: str, index: IndexLike, cfg: BaselineConfig | None = None,
                  embedder: EmbedFn | None = None) -> Retriever:
    """Open (building or syncing as needed) the baseline `method` over `index`'s procedures. `embedder`:
    None = the one the index was built with (`index.embed_fn`), MiniLM only for an index without one."""
    cfg = cfg or BaselineConfig()
    if method in ("bm25", "bm25-chunk"):
        from sopr_rag.baselines.lexical import BM25Retriever

        return BM25Retriever(index, cfg, chunked=method == "bm25-chunk")
    if method == "dense":
        from sopr_rag.baselines.dense import DenseRetriever

        return DenseRetriever(index, cfg, embedder)
    if method == "hybrid":
        from sopr_rag.baselines.dense import DenseRetriever
        from sopr_rag.baselines.hybrid import HybridRetriever
        from sopr_rag.baselines.lexical import BM25Retriever

        return HybridRetriever(BM25Retriever(index, cfg, chunked=False), DenseRetriever(index, cfg, embedder), cfg)
    if method == "graph":
        from sopr_rag.baselines.graph import GraphRetriever

        return GraphRetriever(index, cfg, embedder)  # opens the dense baseline too, for passage seeds
    raise ValueError(f"unknown baseline method '{method}'; choose one of {', '.join(METHODS)}")


__all__ = ["METHODS", "BaselineConfig", "get_retriever"]
