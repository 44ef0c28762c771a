"""SOPRAG retrieval: evidence (lexical + dense) -> candidates (+ graph-expert proposals) -> expert votes -> cited steps.

Default (fusion.method = "evidence"): the evidence ranking of sopr_rag/evidence.py (whole-document
BM25 weighted by the query's lexical trust, chunk dense, card dense) is always on. The candidates are
its top-M (stage1.top_m) plus what the graph experts propose from the WHOLE corpus (experts.propose
each): the component graph (experts/components.py, the entity expert of this design) its best-linked
procedures, the causal section graph its best-activated ones, so a procedure every voter ranked low can
still be found. Each voting expert then ranks the candidates and the final score adds its vote:

    score(d) = evidence(d) + sum_e v_e / (k + rank_e(d)),   v_e = expert_votes[e] + gated_votes * 3 * g_e

(ranks are competition ranks: tied scores share one; evidence(d) = 0 for a proposal no voter listed),
so with every v_e = 0 SOPRAG is the evidence ranking. Measured (README): the causal vote helps; the
component vote needs LLM cards (component functions and aliases) to link symptom queries; the flow
expert serves step selection.

The first design (fusion.method = "weighted"), card stage 1 only:

    score(d) = a * mm(stage1)(d) + (1 - a) * sum_e g_e * mm(s_e)(d),   e in {entity, causal, flow}

where mm is min-max normalisation over the pruned set, stage1 the RRF of card BM25 and card dense
ranks, g the gate weights (sum 1) and a = fusion.stage1_weight. With fusion.method = "rrf" the
ranked lists of stage 1 and every expert are fused by reciprocal rank, each expert's contribution
scaled by its gate weight. Procedures outside the pruned set are never returned.
"""

from __future__ import annotations

import time
from typing import Any

from runtime.llm import SamplingParams
from sopr_rag.config import SopragConfig
from sopr_rag.evidence import Evidence, card_rankings
from sopr_rag.experts import causal, entity, flow
from sopr_rag.experts.base import Query
from sopr_rag.experts.components import ComponentGraph
from sopr_rag.gate import EXPERTS, Gate
from sopr_rag.retrieval.fusion import by_score, minmax, rrf, tied_ranks
from sopr_rag.types import SearchHit, SearchResult


class SopragRetriever:
    name = "soprag"

    def __init__(self, index: Any, cfg: SopragConfig | None = None, gate: Gate | None = None):
        self.index = index
        self.cfg = cfg or SopragConfig()
        self.gate = gate or Gate(self.cfg.gate)
        self.evidence = Evidence(index, self.cfg.fusion, self.cfg.stage1.candidates)
        self._corpus: dict[str, Any] | None = None

    def stage1(self, query: Query) -> list[tuple[str, float]]:
        c = self.cfg.stage1
        lex, dense = card_rankings(self.index, query, c.candidates)
        return rrf([lex, dense], k=c.rrf_k)[:c.top_m]

    def expert_votes(self, weights: dict[str, float]) -> dict[str, float]:
        f = self.cfg.fusion
        return {e: f.expert_votes.get(e, 0.0) + f.gated_votes * len(EXPERTS) * weights.get(e, 0.0) for e in EXPERTS}

    def search(self, query_text: str, top_k: int = 10) -> SearchResult:
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        query = Query.encode(query_text, self.index.embed_fn)
        timings["encode"] = _ms(t0)
        if self.cfg.fusion.method == "evidence":
            return self._search_evidence(query, top_k, timings, t0)
        pruned = self.stage1(query)
        timings["stage1"] = _ms(t0) - timings["encode"]
        if not pruned:
            return SearchResult(query=query_text, hits=[], timings_ms=timings)
        docs = [self.index.docs[d] for d, _ in pruned]
        t1 = time.perf_counter()
        weights, source = self.gate.weights(query_text)
        timings["gate"] = _ms(t1)
        t1 = time.perf_counter()
        ecfg = self.cfg.experts
        ent_scores, links = entity.score(query, docs, ecfg)
        cau_scores, reached = causal.score(query, docs, ecfg)
        flo_scores = flow.score(query, docs, ecfg)
        timings["experts"] = _ms(t1)
        expert_scores = {"entity": ent_scores, "causal": cau_scores, "flow": flo_scores}
        fused = self._fuse(dict(pruned), expert_scores, weights)
        stage1 = dict(pruned)
        hits = self._hits(query, by_score(fused)[:top_k], reached,
                          lambda d: {"stage1": stage1[d], **{e: expert_scores[e][d] for e in EXPERTS}})
        timings["total"] = _ms(t0)
        result = SearchResult(query=query_text, hits=hits, expert_weights=weights, timings_ms=timings)
        result.expert_weights = {**weights}
        self.last_debug = {"gate_source": source, "entity_links": links}
        return result

    def corpus(self) -> dict[str, Any]:
        """Corpus-wide expert structures (all documents, the component graph), built once per loaded index."""
        if self._corpus is None or self._corpus["docs"] is not self.index.docs:
            self._corpus = {"docs": self.index.docs, "all": list(self.index.docs.values()),
                            "components": ComponentGraph(list(self.index.docs.values()))}
        return self._corpus

    def _search_evidence(self, query: Query, top_k: int, timings: dict[str, float], t0: float) -> SearchResult:
        f, ecfg = self.cfg.fusion, self.cfg.experts
        t1 = time.perf_counter()
        scored = self.evidence.scored(query)
        ev, voter_w, trust = self.evidence.fuse(scored)
        pin = self.evidence.pinned(query, scored)
        pruned = by_score(ev)[: self.cfg.stage1.top_m]
        timings["stage1"] = _ms(t1)
        if not pruned:
            return SearchResult(query=query.text, hits=[], timings_ms=timings)
        t1 = time.perf_counter()
        if f.gated_votes > 0:
            weights, source = self.gate.weights(query.text)
        else:  # the gate does not vote: skip it (an LLM gate would cost a call for nothing)
            weights, source = {e: 1 / len(EXPERTS) for e in EXPERTS}, "off"
        votes = self.expert_votes(weights)
        timings["gate"] = _ms(t1)
        t1 = time.perf_counter()
        candidates = [d for d, _ in pruned]
        expert_scores: dict[str, dict[str, float]] = {}
        links: dict[str, float] = {}
        graph = self.corpus()["components"] if votes["entity"] > 0 else None
        if graph is not None and ecfg.component_abstain_named and graph.named(query):
            votes["entity"] = 0.0  # a plain question names its part: BM25's ground, not the meaning graph's
        if votes["entity"] > 0:  # the component graph scores the whole corpus; its best add candidates
            ent_all, links = graph.score(query, ecfg)
            if ecfg.component_vote_by_link:
                votes["entity"] *= max(links.values(), default=0.0)
            candidates += [d for d, _ in by_score(ent_all)[:ecfg.propose]]
        if votes["causal"] > 0 and ecfg.propose > 0:
            candidates += causal.propose(query, self.corpus()["all"], ecfg, ecfg.propose)
        candidates = list(dict.fromkeys(candidates))
        proposed = [d for d in candidates if d not in dict(pruned)]
        docs = [self.index.docs[d] for d in candidates]
        if votes["entity"] > 0:
            expert_scores["entity"] = {d: ent_all[d] for d in candidates if d in ent_all}
        # always scored: the steps its activated chains reach also feed step selection
        expert_scores["causal"], reached = causal.score(query, docs, ecfg)
        if votes["flow"] > 0:
            expert_scores["flow"] = flow.score(query, docs, ecfg)
        timings["experts"] = _ms(t1)
        fused = {d: ev.get(d, 0.0) for d in candidates}
        for e, scores in expert_scores.items():
            if votes[e] > 0:  # a vote by rank among the candidates; tied scores share a rank
                for d, r in tied_ranks({d: s for d, s in scores.items() if s > 0}).items():
                    fused[d] += votes[e] / (f.rrf_k + r)
        if pin is not None:  # the query is in this document's words: it ranks first whatever the votes say
            fused[pin] = max(fused.values(), default=0.0) + 1e-9
        hits = self._hits(query, by_score(fused)[:top_k], reached,
                          lambda d: {"evidence": ev.get(d, 0.0), "trust": trust,
                                     **{e: s.get(d, 0.0) for e, s in expert_scores.items()}})
        timings["total"] = _ms(t0)
        total = sum(votes.values())
        shown = {e: v / total for e, v in votes.items()} if total > 0 else dict(weights)
        self.last_debug = {"gate_source": source, "entity_links": links, "trust": trust, "voters": voter_w,
                           "proposed": proposed, "votes": votes, "pinned": pin}
        return SearchResult(query=query.text, hits=hits, expert_weights=shown, timings_ms=timings)

    def _hits(self, query: Query, ranked: list[tuple[str, float]], reached: dict[str, list[int]],
              details: Any) -> list[SearchHit]:
        """SearchHits for the final ranking; ordered steps (flow expert) for the top 3 procedures."""
        hits = []
        for rank, (doc_id, score) in enumerate(ranked):
            steps = flow.step_path(query, self.index.docs[doc_id], self.cfg.experts, self.cfg.answer.max_steps,
                                   reached.get(doc_id)) if rank < 3 else []
            hits.append(SearchHit(doc_id=doc_id, score=float(score), steps=steps, details=details(doc_id)))
        return hits

    def _fuse(self, stage1: dict[str, float], experts: dict[str, dict[str, float]],
              weights: dict[str, float]) -> dict[str, float]:
        f = self.cfg.fusion
        if f.method == "rrf":
            out = {d: f.stage1_weight * s for d, s in rrf([list(stage1)], k=f.rrf_k)}
            for e, scores in experts.items():
                order = [d for d, _ in by_score(scores)]
                for d, s in rrf([order], k=f.rrf_k):
                    out[d] = out.get(d, 0.0) + (1 - f.stage1_weight) * weights[e] * s
            return out
        s1 = minmax(stage1)
        normed = {e: minmax(scores) for e, scores in experts.items()}
        return {d: f.stage1_weight * s1[d] + (1 - f.stage1_weight) * sum(weights[e] * normed[e][d] for e in EXPERTS)
                for d in stage1}

    # ------------------------------------------------------------------ answers
    def answer(self, question: str, top_k: int = 3, generate: bool | None = None) -> dict[str, Any]:
        """Retrieved procedures, cited ordered steps and (optionally) an LLM answer grounded in them."""
        result = self.search(question, top_k)
        out: dict[str, Any] = {"question": question, "procedures": [
            {"doc_id": h.doc_id, "title": self.index.docs[h.doc_id].proc.title, "score": h.score} for h in result.hits],
            "steps": result.hits[0].steps if result.hits else [], "expert_weights": result.expert_weights,
            "answer": None}
        if (self.cfg.answer.generate if generate is None else generate) and out["steps"]:
            out["answer"] = self.grounded_answer(question, out["steps"])
        return out

    def grounded_answer(self, question: str, steps: list[dict[str, Any]]) -> str:
        """The LLM's answer to `question` from the cited `steps` only (the API runs it off the query lock)."""
        cited = "\n".join(f"[{s['doc_id']}#{s['number']}] {s['text']}" for s in steps)
        prompt = [{"role": "system", "content": "Answer the operator using ONLY the cited steps below. "
                   "Cite steps as [doc#step]. If the steps do not answer the question, say so.\n" + cited},
                  {"role": "user", "content": question}]
        gen = self.gate.llm().generate([prompt], SamplingParams(max_new_tokens=self.cfg.answer.max_new_tokens))
        return gen[0].text.strip()


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 3)
