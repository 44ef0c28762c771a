"""Evidence ranking: the lexical + dense signals SOPRAG builds on, always on, with a lexical-trust weight.

    evidence(d) = sum_s w_s / (k + rank_s(d)),    s in {bm25, dense, card_dense, card_bm25}

bm25        bm25s over whole documents (the `bm25` baseline's index, shared with it)
dense       MiniLM + FAISS over heading-aware chunks, document = best chunk (the `dense` baseline's index)
card_dense  MiniLM over Procedure Cards (the SOPRAG index's own FAISS)
card_bm25   BM25 over Procedure Cards

w_s = FusionConfig.voters[s], and every lexical voter is multiplied by the query's *lexical trust*:

    trust = clip(agree / trust_full, trust_floor, 1),   agree = |top_k(bm25) & top_k(dense)| / k
    trust = 1 when BM25's top hit is also in dense's top `trust_top1_k` (dense corroborates it; 0 = off, default)
    trust = 1 when BM25's top score is >= `trust_margin` times its second (default 1.3; 0 = off)

A question in the documents' own terms makes BM25 and dense agree on their top hits; a symptom
description that avoids those terms ("the service that sends out our pages") makes BM25 chase
incidental words, and the two lists disagree. Trust is a query-performance predictor computed from
the query and the index alone (no labels), so it transfers to unseen corpora. The optional top-1 rule
keeps BM25 at full weight when its best hit is one dense also ranks high (plain questions whose BM25
top hit is right but whose lower ranks scatter); it changed nothing on the selection sets, so it is off.
The margin rule (on) catches what agreement misses: a query whose words single out one document far
better than any other (top BM25 score >= 1.3x the second) is a decisive lexical match even when dense
disagrees. At that margin BM25's top hit was right on every plain selection set and on the OpenShift symptom
set, and right a third of the time on the symptom sets where dense then still outvotes it (selection,
sopr_rag/README.md: devsym +0.016, OpenShift symptom +0.028, no other set moved; flat for margins 1.1-1.4).
"""

from __future__ import annotations

from typing import Any

from sopr_rag.baselines.base import BaselineConfig, best_per_doc
from sopr_rag.config import FusionConfig
from sopr_rag.experts.base import Query
from sopr_rag.retrieval.embedder import Embedder
from sopr_rag.retrieval.fusion import by_score

LEXICAL = ("bm25", "card_bm25")


def lexical_trust(bm25: list[str], dense: list[str], cfg: FusionConfig, bm25_margin: float = 0.0) -> float:
    """bm25_margin: BM25's top score over its second (0 when unknown)."""
    k = cfg.trust_k
    if not bm25 or not dense or k <= 0:
        return 1.0
    if cfg.trust_margin > 0 and bm25_margin >= cfg.trust_margin:
        return 1.0  # one document matches the words far better than any other: not an incidental match
    if cfg.trust_top1_k > 0 and bm25[0] in dense[:cfg.trust_top1_k]:
        return 1.0  # dense corroborates BM25's best hit: the lexical match is not incidental
    agree = len(set(bm25[:k]) & set(dense[:k])) / k
    if cfg.trust_full <= 0:
        return 1.0
    return min(1.0, max(cfg.trust_floor, agree / cfg.trust_full))


def card_rankings(index: Any, query: Query, n: int) -> tuple[list[str], list[str]]:
    """(BM25, dense) rankings of the Procedure Cards: n doc ids each, dense ties broken by id."""
    lexical = [d for d, _ in index.bm25.search(query.text, n)]
    dense = [d for d, _ in by_score(index.dense.search_vector(query.vector, n))]
    return lexical, dense


class Evidence:
    """Opens (lazily, building or syncing as needed) the whole-document BM25 and chunk dense indexes."""

    def __init__(self, index: Any, cfg: FusionConfig, candidates: int = 100):
        self.index, self.cfg, self.candidates = index, cfg, candidates
        self._lexical: Any = None
        self._dense: Any = None
        self.bm25_margin = 0.0

    def _open(self) -> None:
        from sopr_rag.baselines.dense import DenseRetriever  # faiss, loaded when a query first needs it
        from sopr_rag.baselines.lexical import BM25Retriever

        bcfg = BaselineConfig()
        embed = self.index.embed_fn
        self._lexical = BM25Retriever(self.index, bcfg, chunked=False)
        self._dense = DenseRetriever(self.index, bcfg, None if isinstance(embed, Embedder) else embed)

    def rankings(self, query: Query) -> dict[str, list[str]]:
        """Each voter's ranked doc ids (only the voters with a non-zero weight are computed).

        Also sets self.bm25_margin for this query (read by `weights`; one Evidence serves one query at a time)."""
        need = {s for s, w in self.cfg.voters.items() if w > 0} | ({"bm25", "dense"} if self.cfg.trust_k else set())
        out: dict[str, list[str]] = {}
        if need & {"bm25", "dense"} and self._lexical is None:
            self._open()
        self.bm25_margin = 0.0
        if "bm25" in need:
            scored = self._lexical.rank(query.text)[: self.candidates]
            out["bm25"] = [d for d, _ in scored]
            if len(scored) > 1 and scored[1][1] > 0:
                self.bm25_margin = scored[0][1] / scored[1][1]
        if "dense" in need:
            hits = self._dense.dense.search_vector(query.vector, self._dense.cfg.candidate_k)
            out["dense"] = [d for d, _ in best_per_doc(hits, self._dense.doc_of)][: self.candidates]
        if need & {"card_dense", "card_bm25"}:
            out["card_bm25"], out["card_dense"] = card_rankings(self.index, query, self.candidates)
        return {s: r for s, r in out.items() if s in need}

    def weights(self, rankings: dict[str, list[str]]) -> tuple[dict[str, float], float]:
        """(voter -> RRF weight, lexical trust)."""
        trust = lexical_trust(rankings.get("bm25", []), rankings.get("dense", []), self.cfg, self.bm25_margin)
        return {s: w * (trust if s in LEXICAL else 1.0) for s, w in self.cfg.voters.items()
                if w > 0 and s in rankings}, trust
