"""Shared retrieval primitives (lexical, dense, fusion, embedding, chunking) used by SOPRAG and every baseline."""

from sopr_rag.retrieval.chunking import Passage, chunk_procedure
from sopr_rag.retrieval.fusion import minmax, rrf

__all__ = ["Passage", "chunk_procedure", "minmax", "rrf"]
