"""Dense baseline: the index's embedder (MiniLM by default) over heading-aware chunks in FAISS; document
score = best chunk (max-P)."""

from __future__ import annotations

import time

from runtime.logging import get_logger
from sopr_rag.baselines.base import (
    BaselineConfig,
    IndexLike,
    Manifest,
    best_per_doc,
    embedder_dim,
    embedder_settings,
    resolve_embedder,
    to_result,
)
from sopr_rag.retrieval.chunking import chunk_procedure
from sopr_rag.retrieval.dense import DenseIndex, EmbedFn
from sopr_rag.types import SearchResult

log = get_logger("sopr_rag.baselines")


class DenseRetriever:
    name = "dense"

    def __init__(self, index: IndexLike, cfg: BaselineConfig, embedder: EmbedFn | None = None):
        """`embedder`: None = the index's own (`index.embed_fn`), MiniLM only when the index has none."""
        self.cfg, self.procedures = cfg, index.procedures
        embedder = resolve_embedder(index, embedder)
        self.dir = index.index_dir / "baselines" / self.name
        self.manifest = Manifest(self.dir / "manifest.json", {"words": cfg.chunk_words,
                                                               "overlap": cfg.chunk_overlap,
                                                               **embedder_settings(embedder)})
        try:
            self.dense = (DenseIndex.load(self.dir / "faiss", embedder) if self.manifest.hashes
                          else DenseIndex(embedder))
            if self.dense.dim != embedder_dim(embedder):  # vectors of another embedder: unusable
                raise ValueError(f"it holds {self.dense.dim}-d vectors, the embedder makes "
                                 f"{embedder_dim(embedder)}-d ones")
        except Exception as err:  # noqa: BLE001 - damaged or missing (faiss raises RuntimeError): rebuild
            log.warning("rebuilding dense baseline index %s: %s: %s", self.dir / "faiss", type(err).__name__, err)
            self.manifest.hashes = {}
            self.dense = DenseIndex(embedder)
        self.doc_of = {pid: pid.rsplit("#", 1)[0] for pid in self.dense.ids}
        self._sync()

    def _sync(self) -> None:
        plan = self.manifest.plan(self.procedures)
        if not plan.changed:
            return
        gone = set(plan.removed)
        self.dense.remove([pid for pid, doc in self.doc_of.items() if doc in gone])
        self.doc_of = {pid: doc for pid, doc in self.doc_of.items() if doc not in gone}
        passages = [p for d in plan.added for p in chunk_procedure(self.procedures[d], self.cfg.chunk_words,
                                                                  self.cfg.chunk_overlap)]
        self.dense.add([p.passage_id for p in passages], [p.text for p in passages])
        self.doc_of.update({p.passage_id: p.doc_id for p in passages})
        log.info("dense baseline: +%d docs (%d passages), -%d docs", len(plan.added), len(passages),
                 len(plan.removed))
        self.dense.save(self.dir / "faiss")
        self.manifest.commit(self.procedures)

    def rank(self, query: str) -> list[tuple[str, float]]:
        return best_per_doc(self.dense.search(query, self.cfg.candidate_k), self.doc_of)

    def search(self, query: str, top_k: int = 10) -> SearchResult:
        t0 = time.perf_counter()
        return to_result(query, self.rank(query), self.procedures, top_k, (time.perf_counter() - t0) * 1e3)
