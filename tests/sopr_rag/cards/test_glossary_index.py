"""The glossary in the index: it feeds the component graph (a paraphrase reaches the runbooks of the part
it describes), costs LLM calls only when the corpus changed, and an incremental update equals a fresh build."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sopr_rag.cards.glossary import GlossaryBuilder
from sopr_rag.config import CardsConfig, ExpertConfig, FusionConfig, SopragConfig
from sopr_rag.experts.base import Query
from sopr_rag.experts.components import ComponentGraph
from sopr_rag.index import SopIndex
from sopr_rag.pipeline import SopragRetriever

AM = ["content/runbooks/alertmanager/AlertmanagerClusterDown.md",
      "content/runbooks/alertmanager/AlertmanagerFailedToSendAlerts.md"]
ETCD_NO_LEADER = "content/runbooks/etcd/etcdNoLeader.md"
RAID = "content/runbooks/node/NodeRAIDDegraded.md"
ADDED = "content/runbooks/alertmanager/AlertmanagerConfigInconsistent.md"
QUERIES = ["the service that sends our pages", "control-plane datastore has no leader", "node agent vanished",
           "time of day is wrong on one machine", "disk mirror lost a disk"]


def builder(cache, llm) -> GlossaryBuilder:
    return GlossaryBuilder(CardsConfig(glossary=True, cache_path=str(cache)), llm)


def graph_of(index) -> ComponentGraph:
    return ComponentGraph(list(index.docs.values()))


def test_a_paraphrase_reaches_the_runbooks_through_the_glossary_function(runbooks, tmp_path, hashing_embedder,
                                                                          runbook_llm):
    index, _ = SopIndex.build(runbooks, tmp_path / "idx", hashing_embedder,
                              glossary_builder=builder(tmp_path / "c.jsonl", runbook_llm()))
    graph = graph_of(index)
    query = Query.encode("the service that sends our pages", hashing_embedder)  # no name, no alias of it
    scores, links = graph.score(query, ExpertConfig())
    assert max(links, key=links.get) == "alertmanag" and links["alertmanag"] < 1.0  # a meaning link
    assert set(sorted(scores, key=scores.get, reverse=True)[:2]) == set(AM)
    # an alias links by its words: "control-plane datastore" -> etcd, with full confidence
    _, links = graph.score(Query.encode("the control-plane datastore has no leader", hashing_embedder),
                           ExpertConfig(component_alias_links=True))
    assert links["etcd"] == 1.0
    rules_only, _ = SopIndex.build(runbooks, tmp_path / "rules", hashing_embedder)
    assert graph_of(rules_only).keys == []  # without the glossary (or LLM cards) the graph is empty


def test_manifest_telemetry_and_an_unchanged_rerun(runbooks, tmp_path, hashing_embedder, runbook_llm):
    idx = tmp_path / "idx"
    _, report = SopIndex.build(runbooks, idx, hashing_embedder, glossary_builder=builder(tmp_path / "c.jsonl",
                                                                                          runbook_llm()))
    meta = json.loads((idx / "manifest.json").read_text())["glossary"]
    assert meta["identity"].startswith("glossary-v2|vllm|fake-glossary|")
    assert {k: meta[k] for k in ("components", "described", "named_by_llm", "named_by_rule")} == \
        {"components": 6, "described": 6, "named_by_llm": 8, "named_by_rule": 2}
    tel = report.telemetry
    assert tel["glossary"]["llm_calls"] == tel["llm_calls"] == 18 and tel["llm_tokens"] > 0 and "glossary" in tel["seconds"]
    before = (idx / "glossary.json").stat().st_mtime_ns
    llm = runbook_llm()
    index, report = SopIndex.build(runbooks, idx, hashing_embedder, glossary_builder=builder(tmp_path / "c.jsonl", llm))
    assert llm.prompts == [] and report.telemetry["llm_calls"] == 0 and (idx / "glossary.json").stat().st_mtime_ns == before
    loaded = SopIndex.load(idx, hashing_embedder)
    assert graph_of(loaded).keys == graph_of(index).keys and len(graph_of(loaded).keys) == 6
    # switched off: the glossary part and what it gave the graph are gone
    index, _ = SopIndex.build(runbooks, idx, hashing_embedder)
    assert index.glossary is None and not (idx / "glossary.json").exists() and graph_of(index).keys == []


def assert_same_answers(a: SopIndex, b: SopIndex):
    cfg = SopragConfig(fusion=FusionConfig(expert_votes={"entity": 0.5}))  # the component graph votes
    ra, rb = SopragRetriever(a, cfg), SopragRetriever(b, cfg)
    for q in QUERIES:
        ha, hb = ra.search(q, 5).hits, rb.search(q, 5).hits
        assert [h.doc_id for h in ha] == [h.doc_id for h in hb], q
        assert [h.score for h in ha] == pytest.approx([h.score for h in hb], abs=1e-6), q


def test_incremental_update_equals_a_fresh_build(runbooks, tmp_path, hashing_embedder, runbook_llm):
    inc = tmp_path / "inc"
    SopIndex.build(runbooks, inc, hashing_embedder, glossary_builder=builder(tmp_path / "c.jsonl", runbook_llm()))
    path = runbooks / ETCD_NO_LEADER
    path.write_text(path.read_text().replace("has no leader", "lost its leader"))
    (runbooks / RAID).unlink()
    (runbooks / ADDED).write_text("---\ntitle: Alertmanager Config Inconsistent\n---\n\nThe configuration of the "
                                  "Alertmanager instances differs.\n\n## Steps\n1. Compare the configurations.\n")
    llm = runbook_llm()
    index, report = SopIndex.build(runbooks, inc, hashing_embedder, glossary_builder=builder(tmp_path / "c.jsonl", llm))
    assert (report.added, report.changed, report.removed) == ([ADDED], [ETCD_NO_LEADER], [RAID])
    # asked: the two new runbooks' components (the added one twice: its reply is its title), and the describe
    # question again only for the component whose first three titles changed
    assert llm.asked("name") == ["Alertmanager Config Inconsistent", "etcdNoLeader", "Alertmanager Config Inconsistent"]
    assert llm.asked("describe") == ["Alertmanager"]
    entries = {e["name"]: e for e in index.glossary.entries}
    assert "RAID array" not in entries and ADDED in entries["Alertmanager"]["docs"]

    fresh, _ = SopIndex.build(runbooks, tmp_path / "fresh", hashing_embedder,
                              glossary_builder=builder(tmp_path / "other-cache.jsonl", runbook_llm()))
    assert index.glossary.entries == fresh.glossary.entries and index.glossary.docs == fresh.glossary.docs
    np.testing.assert_array_equal(index.glossary.vectors, fresh.glossary.vectors)
    assert_same_answers(index, fresh)
    assert_same_answers(SopIndex.load(inc, hashing_embedder), fresh)


def test_a_damaged_glossary_is_named_then_rebuilt_from_the_cache(runbooks, tmp_path, hashing_embedder, runbook_llm):
    idx = tmp_path / "idx"
    SopIndex.build(runbooks, idx, hashing_embedder, glossary_builder=builder(tmp_path / "c.jsonl", runbook_llm()))
    (idx / "glossary.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="glossary.json"):  # SopIndexError
        SopIndex.load(idx, hashing_embedder)
    llm = runbook_llm()
    index, report = SopIndex.build(runbooks, idx, hashing_embedder, glossary_builder=builder(tmp_path / "c.jsonl", llm))
    assert "glossary" in report.repaired and llm.prompts == [] and len(index.glossary.entries) == 6
    assert len(graph_of(SopIndex.load(idx, hashing_embedder)).keys) == 6
