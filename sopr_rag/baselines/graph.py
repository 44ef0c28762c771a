"""Graph-RAG baseline in the HippoRAG style: entity-passage graph + personalised PageRank.

Build: each chunk becomes a passage node linked to the entities found in it (the core's rule-based
`find_entities` plus the procedure's extracted entities); entities whose MiniLM embeddings are near
duplicates get synonym edges. Query: seed entities = those named in the query (exact, after stemming)
and its nearest entities by embedding, weighted by specificity (IDF); as in HippoRAG 2, passage nodes
are seeded too, by their dense similarity to the query (`passage_seed_weight` of the restart mass).
PageRank restarts at the seeds; a document scores as its best passage.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict

import networkx as nx
import numpy as np

from runtime.checkpoint import atomic_write_json
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
from sopr_rag.baselines.dense import DenseRetriever
from sopr_rag.ingest.fields import find_entities
from sopr_rag.retrieval.chunking import chunk_procedure
from sopr_rag.retrieval.dense import DenseIndex, EmbedFn
from sopr_rag.retrieval.lexical import tokenize
from sopr_rag.types import Procedure, SearchResult

log = get_logger("sopr_rag.baselines")
SYNONYM_SIM = 0.85


def entity_key(surface: str) -> str:
    """Entities are merged by their stemmed token sequence ('Config-Reloader' == 'config reloader')."""
    return " ".join(dict.fromkeys(tokenize(surface)))


def extract(proc: Procedure, cfg: BaselineConfig) -> dict[str, dict[str, list[str] | str]]:
    """passage id -> {"entities": [key...], "surfaces": [...]}: the only per-document build product."""
    doc_entities = list(proc.entities)
    out: dict[str, dict] = {}
    for p in chunk_procedure(proc, cfg.chunk_words, cfg.chunk_overlap):
        low = p.text.lower()
        surfaces = find_entities(p.text) + [e for e in doc_entities if e.lower() in low]
        keyed = {entity_key(s): s for s in surfaces if entity_key(s)}
        out[p.passage_id] = {"doc": proc.doc_id, "entities": list(keyed), "surfaces": list(keyed.values())}
    return out


class GraphRetriever:
    name = "graph"

    def __init__(self, index: IndexLike, cfg: BaselineConfig, embedder: EmbedFn | None = None,
                 passages: DenseRetriever | None = None):
        self.cfg, self.procedures = cfg, index.procedures
        embedder = resolve_embedder(index, embedder)  # None: the index's own, never MiniLM behind its back
        self.dense = passages if passages is not None or cfg.passage_seed_weight == 0 \
            else DenseRetriever(index, cfg, embedder)
        self.dir = index.index_dir / "baselines" / self.name
        self.manifest = Manifest(self.dir / "manifest.json", {"words": cfg.chunk_words,
                                                               "overlap": cfg.chunk_overlap,
                                                               **embedder_settings(embedder)})
        self.passages: dict[str, dict] = {}
        if self.manifest.hashes and (self.dir / "extract.json").is_file():
            try:
                self.passages = json.loads((self.dir / "extract.json").read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:  # damaged: rebuild from the procedures, never crash
                log.warning("graph baseline %s is damaged (%s); rebuilding it", self.dir / "extract.json", err)
        if not self.passages:  # nothing usable on disk: every document must be extracted again
            self.manifest.hashes = {}
        try:
            self.entity_index = DenseIndex.load(self.dir / "entities", embedder) if self.passages \
                else DenseIndex(embedder)
            if self.entity_index.dim != embedder_dim(embedder):  # vectors of another embedder: unusable
                raise ValueError(f"entity index holds {self.entity_index.dim}-d vectors, the embedder makes "
                                 f"{embedder_dim(embedder)}-d ones")
        except Exception as err:  # noqa: BLE001 - faiss raises RuntimeError on a damaged file
            log.warning("rebuilding graph baseline: %s: %s", type(err).__name__, err)
            self.manifest.hashes, self.passages = {}, {}
            self.entity_index = DenseIndex(embedder)
        self._sync()
        self._build_graph()

    def _sync(self) -> None:
        plan = self.manifest.plan(self.procedures)
        if not plan.changed:
            return
        gone = set(plan.removed)
        self.passages = {pid: v for pid, v in self.passages.items() if v["doc"] not in gone}
        for doc in plan.added:
            self.passages.update(extract(self.procedures[doc], self.cfg))
        surface: dict[str, str] = {}
        for v in self.passages.values():
            for key, s in zip(v["entities"], v["surfaces"]):
                surface.setdefault(key, s)
        self.entity_index.remove([k for k in self.entity_index.ids if k not in surface])
        new = [k for k in surface if k not in self.entity_index]
        self.entity_index.add(new, [surface[k] for k in new])
        log.info("graph baseline: %d passages, %d entities (+%d embedded)", len(self.passages), len(surface),
                 len(new))
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.dir / "extract.json", self.passages, indent=None)
        self.entity_index.save(self.dir / "entities")
        self.manifest.commit(self.procedures)

    def _build_graph(self) -> None:
        df: dict[str, int] = defaultdict(int)
        for v in self.passages.values():
            for key in v["entities"]:
                df[key] += 1
        n = max(len(self.passages), 1)
        self.idf = {k: math.log(1 + n / c) for k, c in df.items()}
        g = nx.Graph()
        for pid, v in self.passages.items():
            g.add_node(("p", pid))
            for key in v["entities"]:
                # Edges weighted by specificity so hub entities ("kubectl") do not flood the walk.
                g.add_edge(("p", pid), ("e", key), weight=self.idf[key])
        self._add_synonym_edges(g)
        self.graph = g
        self.doc_of = {pid: v["doc"] for pid, v in self.passages.items()}
        self.key_tokens = {k: set(k.split()) for k in df}

    def _add_synonym_edges(self, g: nx.Graph) -> None:
        keys = self.entity_index.ids
        if len(keys) < 2:
            return
        idx = self.entity_index._index  # FAISS reconstruct: vectors are already stored, no re-embedding
        vecs = np.stack([idx.reconstruct(self.entity_index._int_of[k]) for k in keys])
        sims = vecs @ vecs.T
        rows, cols = np.nonzero(np.triu(sims, 1) >= SYNONYM_SIM)
        for i, j in zip(rows.tolist(), cols.tolist()):
            g.add_edge(("e", keys[i]), ("e", keys[j]), weight=float(sims[i, j]))

    def seeds(self, query: str) -> dict[str, float]:
        """Query entity linking: exact (stemmed) mentions, then nearest entity names by embedding."""
        q_tokens = set(tokenize(query))
        found: dict[str, float] = {}
        for key, toks in self.key_tokens.items():
            if toks and toks <= q_tokens:
                found[key] = 1.0
        for s in find_entities(query):
            if entity_key(s) in self.idf:
                found[entity_key(s)] = 1.0
        if self.cfg.entity_link_k:
            for key, sim in self.entity_index.search(query, self.cfg.entity_link_k):
                if sim >= self.cfg.entity_link_min_sim and key in self.idf:
                    found[key] = max(found.get(key, 0.0), sim)
        return {k: w * self.idf[k] for k, w in found.items()}

    def personalization(self, query: str) -> dict[tuple[str, str], float]:
        """Restart distribution: entity seeds and (optionally) dense passage seeds, each summing to its share."""
        ents = self.seeds(query)
        w_pass = self.cfg.passage_seed_weight if self.dense is not None else 0.0
        out: dict[tuple[str, str], float] = {}
        if ents:
            total = sum(ents.values())
            out.update({("e", k): (1 - w_pass) * w / total for k, w in ents.items()})
        if w_pass > 0:
            hits = [(pid, s) for pid, s in self.dense.dense.search(query, self.cfg.candidate_k)
                    if s > 0 and ("p", pid) in self.graph]
            total = sum(s for _, s in hits)
            out.update({("p", pid): w_pass * s / total for pid, s in hits} if total else {})
        return out

    def rank(self, query: str) -> list[tuple[str, float]]:
        restart = self.personalization(query)
        if not restart:
            return []
        scores = nx.pagerank(self.graph, alpha=1 - self.cfg.ppr_alpha, personalization=restart, weight="weight")
        passage_scores = [(node[1], s) for node, s in scores.items() if node[0] == "p" and s > 0]
        return best_per_doc(passage_scores, self.doc_of)

    def search(self, query: str, top_k: int = 10) -> SearchResult:
        t0 = time.perf_counter()
        ranked = self.rank(query)
        return to_result(query, ranked, self.procedures, top_k, (time.perf_counter() - t0) * 1e3)
