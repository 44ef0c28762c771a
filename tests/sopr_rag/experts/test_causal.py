"""Causal expert: chains reached by the query's symptoms/conditions; near-twins separated by conditions."""

from __future__ import annotations

import pytest

from sopr_rag.config import ExpertConfig
from sopr_rag.experts import causal
from sopr_rag.experts.base import Query

CFG = ExpertConfig()
FAILED = "datacenter/ups-on-battery-generator-failed.md"
OUTAGE = "datacenter/ups-on-battery-utility-outage.md"
FILTER = "liquid_cooling/cdu-pump-cavitation-after-filter-change.md"
RESERVOIR = "liquid_cooling/cdu-pump-cavitation-low-reservoir.md"


def test_graph_part_has_symptom_cause_condition_chains(hashed_docs):
    part = hashed_docs["building_management/ahu-freeze-stat-trip.md"].causal
    kinds = [n["kind"] for n in part["nodes"]]
    assert {"symptom", "cause", "condition"} <= set(kinds)
    cause = kinds.index("cause")
    assert any(dst == cause and kinds[src] == "symptom" for src, dst in part["edges"])
    guarded = [n for n in part["nodes"] if n["step"] is not None]
    assert guarded[0]["text"] == "If the freeze stat trips again" and guarded[0]["step"] == 6


@pytest.mark.parametrize("query, right, wrong", [
    ("ups on battery and the generator failed to start", FAILED, OUTAGE),
    ("ups on battery, utility outage, generator running fine", OUTAGE, FAILED),
    ("pump cavitation right after the filter cartridge was replaced", FILTER, RESERVOIR),
    ("pump cavitation, reservoir level low, slow leak", RESERVOIR, FILTER),
])
def test_near_twins_are_told_apart_by_their_conditions(hashed_docs, hashing_embedder, query, right, wrong):
    pruned = [hashed_docs[d] for d in (FAILED, OUTAGE, FILTER, RESERVOIR)]
    scores, _ = causal.score(Query.encode(query, hashing_embedder), pruned, CFG)
    assert scores[right] > scores[wrong]


def test_contrast_ignores_words_all_twins_share(hashed_docs, hashing_embedder):
    pruned = [hashed_docs[FAILED], hashed_docs[OUTAGE]]

    def contrast(text):  # the contrast term alone: score with weight 1 minus score with weight 0
        query = Query.encode(text, hashing_embedder)
        with_c, _ = causal.score(query, pruned, ExpertConfig(causal_contrast_weight=1.0))
        without, _ = causal.score(query, pruned, ExpertConfig(causal_contrast_weight=0.0))
        return {d: with_c[d] - without[d] for d in with_c}

    shared = contrast("UPS-A UPS-B")
    assert shared[FAILED] == pytest.approx(shared[OUTAGE]) and shared[FAILED] > 0
    distinct = contrast("UPS-A UPS-B failed")
    assert distinct[FAILED] == pytest.approx(1.0)  # every query word is in its condition text
    assert distinct[OUTAGE] < shared[OUTAGE] and distinct[FAILED] - distinct[OUTAGE] > 0.4


def test_reached_steps_are_the_guarded_actions(hashed_docs, hashing_embedder):
    doc = hashed_docs["liquid_cooling/coolant-leak-rack-manifold.md"]
    query = Query.encode("If the pressure drops during the test", hashing_embedder)
    _, reached = causal.score(query, [doc], CFG)
    assert 5 in reached[doc.proc.doc_id]  # step 6 (index 5) is guarded by that condition


def test_diagnosis_sub_headings_are_causes_and_mitigation_ones_actions():
    text = ("# etcdNoLeader\n## Meaning\nNo leader.\n## Diagnosis\n### Slow disk issue\nCheck fsync.\n"
            "```shell\n# not a heading\n```\n### Other\nLogs.\n## Mitigation\n### Restore quorum\nDo it.\n"
            "#### Details\nMore.\n## See also\n### Unrelated\n")
    assert causal.sub_headings(text) == {"cause": ["Slow disk issue"], "action": ["Restore quorum", "Details"]}
