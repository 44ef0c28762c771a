"""Flow expert: next/before/order paths inside one procedure."""

from __future__ import annotations

from sopr_rag.config import ExpertConfig
from sopr_rag.experts import flow
from sopr_rag.experts.base import Query

CFG = ExpertConfig()
LEAK = "liquid_cooling/coolant-leak-rack-manifold.md"
AHU = "building_management/ahu-freeze-stat-trip.md"


def numbers(path):
    return [s["number"] for s in path]


def test_next_edges_carry_branch_conditions(hashed_docs):
    edges = hashed_docs[AHU].flow["next"]
    assert edges[0] == [0, 1, None]
    assert edges[-1] == [5, 6, "If the freeze stat trips again"]


def test_what_comes_after_returns_anchor_and_following_steps(hashed_docs, hashing_embedder):
    q = Query.encode("after I close the supply and return quick-disconnect valves of the rack manifold, what next?",
                     hashing_embedder)
    assert numbers(flow.step_path(q, hashed_docs[LEAK], CFG, max_steps=3)) == ["3", "4", "5"]


def test_before_returns_steps_leading_to_the_anchor(hashed_docs, hashing_embedder):
    q = Query.encode("what must be done before I reset the freeze stat manually at the unit", hashing_embedder)
    assert numbers(flow.step_path(q, hashed_docs[AHU], CFG, max_steps=3)) == ["3", "4", "5"]


def test_plain_question_returns_best_steps_in_document_order(hashed_docs, hashing_embedder):
    q = Query.encode("restart the AHU from the BMS and check the heating coil valve actuator", hashing_embedder)
    path = flow.step_path(q, hashed_docs[AHU], CFG, max_steps=2)
    assert numbers(path) == ["2", "6"]
    assert all(s["doc_id"] == AHU for s in path)


def test_procedure_score_prefers_the_procedure_holding_the_steps(hashed_docs, hashing_embedder):
    q = Query.encode("pressure test the manifold at 3 bar for 10 minutes", hashing_embedder)
    scores = flow.score(q, list(hashed_docs.values()), CFG)
    assert max(scores, key=scores.get) == LEAK


def test_next_cue_about_the_situation_falls_back_to_best_steps(hashed_docs, hashing_embedder):
    doc = hashed_docs["liquid_cooling/cdu-pump-cavitation-after-filter-change.md"]
    q = Query.encode("cavitation persists after bleeding and the filter cartridge is seated, what next?",
                     hashing_embedder)
    path = flow.step_path(q, doc, CFG, max_steps=3)
    assert numbers(path)[-1] == "6" and len(path) >= 2  # the anchor is the last step: no lone-step answer
    assert numbers(path) == sorted(numbers(path), key=int)
