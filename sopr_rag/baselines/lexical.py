"""BM25 baselines: over whole documents (`bm25`) and over heading-aware chunks (`bm25-chunk`, max-P)."""

from __future__ import annotations

import time

from sopr_rag.baselines.base import BaselineConfig, IndexLike, Manifest, best_per_doc, log, to_result
from sopr_rag.retrieval.chunking import chunk_procedure, strip_front_matter
from sopr_rag.retrieval.lexical import BM25Index
from sopr_rag.types import SearchResult


class BM25Retriever:
    """BM25 statistics are corpus-global, so any corpus change rebuilds the (cheap) index whole."""

    def __init__(self, index: IndexLike, cfg: BaselineConfig, *, chunked: bool):
        self.name = "bm25-chunk" if chunked else "bm25"
        self.cfg, self.chunked, self.procedures = cfg, chunked, index.procedures
        self.dir = index.index_dir / "baselines" / self.name
        settings = {"chunked": chunked, "words": cfg.chunk_words, "overlap": cfg.chunk_overlap}
        self.manifest = Manifest(self.dir / "manifest.json", settings)
        self.doc_of: dict[str, str] = {}
        if not self.manifest.plan(self.procedures).changed and (self.dir / "bm25").is_dir():
            try:
                self.bm25 = BM25Index.load(self.dir / "bm25")
                self.doc_of = {pid: pid.rsplit("#", 1)[0] if chunked else pid for pid in self.bm25.ids}
                return
            except Exception as err:  # noqa: BLE001 - any damage (JSON, bm25s arrays): rebuild, never crash
                log.warning("%s baseline at %s is damaged (%s: %s); rebuilding it", self.name, self.dir / "bm25",
                            type(err).__name__, err)
        self._rebuild()

    def _rebuild(self) -> None:
        ids, texts = [], []
        for doc_id in sorted(self.procedures):
            proc = self.procedures[doc_id]
            if self.chunked:
                for p in chunk_procedure(proc, self.cfg.chunk_words, self.cfg.chunk_overlap):
                    ids.append(p.passage_id)
                    texts.append(p.text)
                    self.doc_of[p.passage_id] = doc_id
            else:
                ids.append(doc_id)
                texts.append(f"{proc.title}\n{strip_front_matter(proc.text)}")
                self.doc_of[doc_id] = doc_id
        self.bm25 = BM25Index().build(ids, texts)
        self.bm25.save(self.dir / "bm25")
        self.manifest.commit(self.procedures)

    def rank(self, query: str) -> list[tuple[str, float]]:
        k = self.cfg.candidate_k if self.chunked else len(self.procedures)
        return best_per_doc(self.bm25.search(query, k), self.doc_of)

    def search(self, query: str, top_k: int = 10) -> SearchResult:
        t0 = time.perf_counter()
        ranked = self.rank(query)
        return to_result(query, ranked, self.procedures, top_k, (time.perf_counter() - t0) * 1e3)
