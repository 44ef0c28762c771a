"""SOPRAG end to end on the fixture corpus with the real MiniLM: ranking quality, fusion formula, citations."""

from __future__ import annotations

import pytest

from sopr_rag.config import SopragConfig
from sopr_rag.gate import EXPERTS
from sopr_rag.pipeline import SopragRetriever
from sopr_rag.retrieval.fusion import minmax

NEAR_TWIN_QUERIES = ["fx-001", "fx-002", "fx-004", "fx-005", "fx-018", "fx-019", "fx-020", "fx-021"]


def mrr(retriever, queries):
    total = 0.0
    for q in queries:
        ranked = [h.doc_id for h in retriever.search(q["query"], 10).hits]
        total += 1 / (ranked.index(q["gold_docs"][0]) + 1) if q["gold_docs"][0] in ranked else 0.0
    return total / len(queries)


def test_fixture_queries_rank_gold_first(minilm_index, sop_queries):
    retriever = SopragRetriever(minilm_index)
    assert mrr(retriever, sop_queries) >= 0.9  # measured 0.958 (23/24 at rank 1 or 2)
    by_id = {q["id"]: q for q in sop_queries}
    for qid in NEAR_TWIN_QUERIES:  # twins differ only by condition: the right one must win
        assert retriever.search(by_id[qid]["query"], 3).hits[0].doc_id == by_id[qid]["gold_docs"][0], qid


def test_final_score_is_the_documented_weighted_fusion(minilm_index):
    """The first design (fusion.method=weighted); the default evidence fusion is tested in test_evidence.py."""
    cfg = SopragConfig.model_validate({"fusion": {"method": "weighted"}})
    result = SopragRetriever(minilm_index, cfg).search("why does the AHU freeze stat trip?", top_k=cfg.stage1.top_m)
    hits = {h.doc_id: h for h in result.hits}
    assert len(hits) == len(minilm_index.docs)  # 13 docs < top_m: everything pruned in, all returned
    norm = {k: minmax({d: h.details[k] for d, h in hits.items()}) for k in ("stage1", *EXPERTS)}
    a, g = cfg.fusion.stage1_weight, result.expert_weights
    for d, h in hits.items():
        expected = a * norm["stage1"][d] + (1 - a) * sum(g[e] * norm[e][d] for e in EXPERTS)
        assert h.score == pytest.approx(expected, abs=1e-9)
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)


def test_experts_only_score_the_pruned_cards_and_their_proposals(minilm_index):
    query = "coolant leak at the rack manifold"
    cfg = SopragConfig.model_validate({"stage1": {"top_m": 3}, "experts": {"propose": 0}})
    assert len(SopragRetriever(minilm_index, cfg).search(query, top_k=10).hits) == 3
    cfg = SopragConfig.model_validate({"stage1": {"top_m": 3}, "experts": {"propose": 5}})
    r = SopragRetriever(minilm_index, cfg)
    hits = [h.doc_id for h in r.search(query, top_k=10).hits]
    proposed = r.last_debug["proposed"]
    assert 0 < len(proposed) <= 5 and len(hits) == 3 + len(proposed)  # the causal expert adds <= 5 from the corpus
    assert set(proposed) <= set(hits)


def test_steps_are_cited_and_ordered(minilm_index):
    result = SopragRetriever(minilm_index).search(
        "after closing the quick-disconnect valves on a leaking rack manifold, what is the next step?", 3)
    top = result.hits[0]
    assert top.doc_id == "liquid_cooling/coolant-leak-rack-manifold.md"
    numbers = [s["number"] for s in top.steps]
    assert numbers[:2] == ["3", "4"]
    written = [s.number for s in minilm_index.docs[top.doc_id].proc.steps]
    assert [written.index(n) for n in numbers] == sorted(written.index(n) for n in numbers)
    assert all(s["doc_id"] == top.doc_id for s in top.steps)
    record = result.to_record("q1")
    assert record["ranked_docs"][0] == top.doc_id and record["steps"] == top.steps
    assert set(record["expert_weights"]) == set(EXPERTS)


def test_answer_without_generation(minilm_index):
    out = SopragRetriever(minilm_index).answer("jet fuel is coming out of the wing vent while refuelling", top_k=2)
    assert out["procedures"][0]["doc_id"] == "airline_ground_ops/fuel-spill-during-refueling.md"
    assert out["answer"] is None and out["steps"]
