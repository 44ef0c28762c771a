"""Component graph: components from LLM cards and folders, linked by alias or meaning, proposing procedures."""

from __future__ import annotations

from sopr_rag.cards import LLMCard
from sopr_rag.config import ExpertConfig
from sopr_rag.experts import components
from sopr_rag.experts.base import Query
from sopr_rag.index.artifacts import build_artifacts
from sopr_rag.ingest import IngestReport, list_documents, load_procedure
from sopr_rag.retrieval.lexical import BM25Index

PDU = "datacenter/pdu-breaker-trip.md"
CARD = LLMCard.model_validate({"components": [
    {"name": "PDU", "aliases": ["juice splitter", "power strip"], "function": "splits rack power between servers"},
    {"name": "clamp meter", "function": "measures current"}], "symptoms": ["servers lose one power feed"]})


def docs_with_card(corpus, embed):
    report = IngestReport()
    return [build_artifacts(load_procedure(d, f, report), embed, CARD if d == PDU else None)
            for d, f in list_documents(corpus).items()]


def test_parts_hold_the_llm_components_main_one_first(sop_corpus, hashing_embedder):
    docs = {d.proc.doc_id: d for d in docs_with_card(sop_corpus, hashing_embedder)}
    comps = docs[PDU].entity["components"]
    assert [(c["key"], c["primary"]) for c in comps] == [("pdu", True), ("clamp meter", False)]
    assert comps[0]["profile"] == "PDU, juice splitter, power strip: splits rack power between servers"
    assert docs[PDU].vectors["components"].shape == (2, hashing_embedder.dim)
    other = docs["datacenter/ups-on-battery-utility-outage.md"]
    assert other.entity["components"] == [] and other.vectors["components"].shape[0] == 0  # rules only: none


def test_alias_link_proposes_what_bm25_misses(sop_corpus, hashing_embedder):
    docs = docs_with_card(sop_corpus, hashing_embedder)
    query = Query.encode("the juice splitter clicked and went quiet", hashing_embedder)
    bm25 = BM25Index().build([d.proc.doc_id for d in docs], [d.proc.text for d in docs])
    assert bm25.search(query.text, 13) == []  # no word of the query is in any SOP: the lexical voter misses
    graph = components.ComponentGraph(docs)
    scores, links = graph.score(query, ExpertConfig(component_min_sim=0.99, component_alias_links=True))  # lexical only
    assert links == {"pdu": 1.0} and scores == {PDU: 1.0}


def test_meaning_links_are_few_and_near_the_best(sop_corpus, hashing_embedder):
    docs = docs_with_card(sop_corpus, hashing_embedder)
    graph = components.ComponentGraph(docs)
    query = Query.encode("splits rack power between servers", hashing_embedder)
    links = graph.link(query, ExpertConfig(component_links=1, component_min_sim=0.3))
    assert list(links) == ["pdu"] and links["pdu"] > 0.6
    assert graph.link(query, ExpertConfig(component_links=0, component_min_sim=0.3)) == {}


def test_a_component_on_most_procedures_is_no_component(sop_corpus, hashing_embedder):
    report = IngestReport()
    everywhere = LLMCard.model_validate({"components": [{"name": "site", "function": "the whole site"}]})
    docs = [build_artifacts(load_procedure(d, f, report), hashing_embedder, CARD if d == PDU else everywhere)
            for d, f in list_documents(sop_corpus).items()]
    graph = components.ComponentGraph(docs)
    assert graph.keys == ["clamp meter", "pdu"]  # "site" is on 12 of 13 procedures: a collection, not a part


def test_meaning_link_scores_each_procedure_by_its_own_profile(sop_corpus, hashing_embedder):
    report = IngestReport()
    a = LLMCard.model_validate({"components": [{"name": "PDU", "function": "splits rack power between servers"}]})
    b = LLMCard.model_validate({"components": [{"name": "PDU", "function": "power distribution unit"}]})
    ups = "datacenter/ups-on-battery-utility-outage.md"
    docs = [build_artifacts(load_procedure(d, f, report), hashing_embedder, a if d == PDU else b if d == ups else None)
            for d, f in list_documents(sop_corpus).items()]
    graph = components.ComponentGraph(docs)
    scores, links = graph.score(Query.encode("it splits rack power between the servers", hashing_embedder),
                                ExpertConfig(component_min_sim=0.3))
    assert set(links) == {"pdu"} and set(scores) == {PDU, ups} and scores[PDU] > scores[ups]
