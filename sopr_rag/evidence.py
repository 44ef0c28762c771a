"""Evidence ranking: the lexical + dense signals SOPRAG builds on, always on.

    rrf:     evidence(d) = sum_s w_s / (k + rank_s(d)),    s in {bm25, dense, card_dense, card_bm25}
    zscore:  evidence(d) = W / (k + rank of d by sum_s w_s * max(z_s(d), floor)),   W = sum_s w_s

(fusion.evidence). z_s standardises voter s's scores over its own candidate list, so a voter counts by how far
a document stands out of its list, not only by its position: a decisive BM25 match (top score far above the
rest) outweighs two correlated MiniLM voters whose lists are flat, the failure rank fusion needed the
lexical-trust rules below for. Mapping the z-score order back to rank-fusion scores keeps the expert votes
added in pipeline.py on the same scale under either mode.

bm25        bm25s over whole documents (the `bm25` baseline's index, shared with it)
dense       MiniLM + FAISS over heading-aware chunks, document = best chunk (the `dense` baseline's index)
card_dense  MiniLM over Procedure Cards (the SOPRAG index's own FAISS)
card_bm25   BM25 over Procedure Cards

w_s = FusionConfig.voters[s], and every lexical voter (under either mode) is multiplied by the query's *lexical trust*:

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
from sopr_rag.retrieval.fusion import by_score, wrrf
from sopr_rag.retrieval.lexical import tokenize

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


def card_scored(index: Any, query: Query, n: int) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(BM25, dense) (doc id, score) lists over the Procedure Cards, n each, best first; dense ties by id."""
    lexical = [(d, float(v)) for d, v in index.bm25.search(query.text, n)]
    dense = [(d, float(v)) for d, v in by_score(index.dense.search_vector(query.vector, n))]
    return lexical, dense


def card_rankings(index: Any, query: Query, n: int) -> tuple[list[str], list[str]]:
    """(BM25, dense) rankings of the Procedure Cards: n doc ids each."""
    lexical, dense = card_scored(index, query, n)
    return [d for d, _ in lexical], [d for d, _ in dense]


def bm25_margin(scored: list[tuple[str, float]]) -> float:
    """BM25's top score over its second (0 when there is no positive second score)."""
    return scored[0][1] / scored[1][1] if len(scored) > 1 and scored[1][1] > 0 else 0.0


def zscore_fusion(scored: dict[str, list[tuple[str, float]]], weights: dict[str, float],
                  floor: float) -> dict[str, float]:
    """sum_s w_s * max(z_s(d), floor): z_s standardises voter s's scores over its own list (mean 0, sd 1), a doc
    missing from a list gets the floor. A voter whose top hit stands far above its list (a decisive BM25
    match) outweighs voters whose lists are flat, which rank fusion cannot express."""
    z: dict[str, dict[str, float]] = {}
    for s in weights:
        vals = [v for _, v in scored.get(s, [])]
        if not vals:
            z[s] = {}
            continue
        mean = sum(vals) / len(vals)
        sd = (sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5 or 1.0
        z[s] = {d: (v - mean) / sd for d, v in scored[s]}
    docs = dict.fromkeys(d for s in weights for d, _ in scored.get(s, []))
    return {d: sum(w * max(z[s].get(d, floor), floor) for s, w in weights.items()) for d in docs}


def coverage(query_words: set[str], doc_words: set[str]) -> float:
    """Share of the query's (stemmed, stop-word-free) words the document contains."""
    return len(query_words & doc_words) / len(query_words) if query_words else 0.0


class Evidence:
    """Opens (lazily, building or syncing as needed) the whole-document BM25 and chunk dense indexes."""

    def __init__(self, index: Any, cfg: FusionConfig, candidates: int = 100):
        self.index, self.cfg, self.candidates = index, cfg, candidates
        self._lexical: Any = None
        self._dense: Any = None
        self._words: dict[str, tuple[str, set[str]]] = {}  # doc id -> (text, its word set)

    def doc_words(self, doc_id: str) -> set[str]:
        proc = self.index.docs[doc_id].proc
        text = f"{proc.title}\n{proc.text}"
        cached = self._words.get(doc_id)
        if cached is None or cached[0] != text:  # re-tokenize a changed document
            cached = self._words[doc_id] = (text, set(tokenize(text)))
        return cached[1]

    def pinned(self, query: Query, scored: dict[str, list[tuple[str, float]]]) -> str | None:
        """BM25's top hit when the query is in its own words (it contains >= cover_pin of the query's words,
        the query has >= cover_min_words words): a pasted alert text or log line names its runbook, and
        dense voters cannot tell near-twin runbooks apart there. None otherwise."""
        c = self.cfg
        bm25 = scored.get("bm25")
        if c.cover_pin <= 0 or not bm25:
            return None
        words = set(tokenize(query.text))
        if len(words) < c.cover_min_words:
            return None
        top = bm25[0][0]
        return top if coverage(words, self.doc_words(top)) >= c.cover_pin else None

    def _open(self) -> None:
        from sopr_rag.baselines.dense import DenseRetriever  # faiss, loaded when a query first needs it
        from sopr_rag.baselines.lexical import BM25Retriever

        bcfg = BaselineConfig()
        embed = self.index.embed_fn
        self._lexical = BM25Retriever(self.index, bcfg, chunked=False)
        self._dense = DenseRetriever(self.index, bcfg, None if isinstance(embed, Embedder) else embed)

    def scored(self, query: Query) -> dict[str, list[tuple[str, float]]]:
        """Each voter's (doc id, score) list, best first, `candidates` long (only the voters with a non-zero
        weight, plus BM25 and dense when lexical trust needs them)."""
        need = {s for s, w in self.cfg.voters.items() if w > 0} | ({"bm25", "dense"} if self.cfg.trust_k else set())
        out: dict[str, list[tuple[str, float]]] = {}
        if need & {"bm25", "dense"} and self._lexical is None:
            self._open()
        if "bm25" in need:
            out["bm25"] = [(d, float(v)) for d, v in self._lexical.rank(query.text)[: self.candidates]]
        if "dense" in need:
            hits = self._dense.dense.search_vector(query.vector, self._dense.cfg.candidate_k)
            out["dense"] = [(d, float(v)) for d, v in best_per_doc(hits, self._dense.doc_of)][: self.candidates]
        if need & {"card_dense", "card_bm25"}:
            out["card_bm25"], out["card_dense"] = card_scored(self.index, query, self.candidates)
        return {s: r for s, r in out.items() if s in need}

    def weights(self, scored: dict[str, list[tuple[str, float]]]) -> tuple[dict[str, float], float]:
        """(voter -> weight, lexical trust): trust scales the lexical voters."""
        bm25, dense = scored.get("bm25", []), scored.get("dense", [])
        trust = lexical_trust([d for d, _ in bm25], [d for d, _ in dense], self.cfg, bm25_margin(bm25))
        return {s: w * (trust if s in LEXICAL else 1.0) for s, w in self.cfg.voters.items()
                if w > 0 and s in scored}, trust

    def fuse(self, scored: dict[str, list[tuple[str, float]]]) -> tuple[dict[str, float], dict[str, float], float]:
        """(evidence(d), voter weights, lexical trust). rrf: sum_s w_s / (k + rank_s(d)). zscore: docs ordered by
        `zscore_fusion`, then put on the same scale as rank fusion, W / (k + rank(d)) with W = sum_s w_s, so the
        expert votes added later weigh the same under either."""
        w, trust = self.weights(scored)
        k = self.cfg.rrf_k
        if self.cfg.evidence == "rrf":
            return dict(wrrf([[d for d, _ in scored[s]] for s in w], list(w.values()), k)), w, trust
        total = sum(w.values())
        fused = by_score(zscore_fusion(scored, w, self.cfg.z_floor))
        return {d: total / (k + rank) for rank, (d, _) in enumerate(fused, start=1)}, w, trust
