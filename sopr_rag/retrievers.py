"""The one registry of retrieval methods: every name `--method`, `--methods`, `/search` or an ablation uses.

    soprag              SopragRetriever (sopr_rag/pipeline.py) with the given SopragConfig
    soprag[<ablation>]  a SOPRAG variant from sopr_rag/eval/ablations.py (`evaluate --ablations`)
    bm25                bm25s over whole documents
    bm25-chunk          bm25s over heading-aware chunks, document = best chunk
    dense               the index's embedder (MiniLM by default) + FAISS over chunks, document = best chunk
    hybrid              RRF of bm25 and dense
    graph               entity graph + personalised PageRank (HippoRAG / LightRAG style)

The CLI (`search --method`), the HTTP API (`/search` `method`) and the evaluation (`evaluate --methods`,
ablations) all open methods through `make_retriever`; an unknown name is the same `UnknownMethodError`
everywhere. Baselines live beside the index (`index_dir/baselines/<method>`) and sync to its procedures
on open (sopr_rag/baselines/base.py).
"""

from __future__ import annotations

from typing import Any

from sopr_rag.baselines.base import BaselineConfig
from sopr_rag.baselines.dense import DenseRetriever
from sopr_rag.baselines.graph import GraphRetriever
from sopr_rag.baselines.hybrid import HybridRetriever
from sopr_rag.baselines.lexical import BM25Retriever
from sopr_rag.config import SopragConfig
from sopr_rag.eval.ablations import ABLATIONS, make_ablation
from sopr_rag.pipeline import SopragRetriever
from sopr_rag.retrieval.dense import EmbedFn
from sopr_rag.types import Retriever

BASELINES = ("bm25", "bm25-chunk", "dense", "hybrid", "graph")
METHODS = ("soprag", *BASELINES)  # what the CLI and the HTTP API accept; evaluate also takes soprag[<ablation>]


class UnknownMethodError(ValueError):
    """A method name no entry point can open."""


def ablation_of(method: str) -> str | None:
    """'soprag[no-trust]' -> 'no-trust'; None for a name of another form."""
    return method[7:-1] if method.startswith("soprag[") and method.endswith("]") else None


def check_method(method: str, *, ablations: bool = True) -> str:
    """`method` if some entry point can open it, else UnknownMethodError naming every valid choice."""
    if method in METHODS or (ablations and ablation_of(method) in ABLATIONS):
        return method
    choices = ", ".join(METHODS)
    if ablations:
        choices += f", or soprag[<ablation>] with <ablation> one of {', '.join(ABLATIONS)}"
    raise UnknownMethodError(f"unknown method '{method}'; choose one of {choices}")


def make_retriever(method: str, index: Any, cfg: SopragConfig | None = None, *,
                   baseline_cfg: BaselineConfig | None = None, embedder: EmbedFn | None = None,
                   intent_of: dict[str, str | None] | None = None) -> Retriever:
    """Open `method` over `index` (baselines are built or synced as needed).

    cfg: SOPRAG's settings (soprag and its ablations); baseline_cfg: the baselines' chunking / fusion
    settings; embedder: the baselines' embedder, None = the one the index was built with (`index.embed_fn`),
    MiniLM only for an index without one; intent_of: query text -> gold intent (the oracle-intent ablation).
    """
    check_method(method)
    if method == "soprag":
        return SopragRetriever(index, cfg or SopragConfig())
    ablation = ablation_of(method)
    if ablation is not None:
        return make_ablation(ablation, index, cfg or SopragConfig(), intent_of or {})
    bcfg = baseline_cfg or BaselineConfig()
    if method in ("bm25", "bm25-chunk"):
        return BM25Retriever(index, bcfg, chunked=method == "bm25-chunk")
    if method == "dense":
        return DenseRetriever(index, bcfg, embedder)
    if method == "hybrid":
        return HybridRetriever(BM25Retriever(index, bcfg, chunked=False), DenseRetriever(index, bcfg, embedder), bcfg)
    return GraphRetriever(index, bcfg, embedder)  # "graph"; opens the dense baseline too, for passage seeds
