"""Graph experts propose candidates from the whole corpus, beyond the evidence top-M."""

from __future__ import annotations

import json

import pytest

from runtime.config import load_config
from sopr_rag.cards.llm import CardBuilder
from sopr_rag.config import CardsConfig, SopragConfig
from sopr_rag.index import SopIndex
from sopr_rag.pipeline import SopragRetriever

PDU = "datacenter/pdu-breaker-trip.md"
QUERY = "the juice splitter clicked and went quiet"  # no word of it occurs in any SOP


@pytest.fixture()
def carded_index(corpus_copy, tmp_path, hashing_embedder, stub_llm, make_card):
    def reply(title, repair):
        if title.startswith("Rack PDU"):
            return make_card("PDU", ["juice splitter"], "splits rack power between servers")
        return make_card(title.split()[0])

    builder = CardBuilder(CardsConfig(mode="llm", cache_path=str(tmp_path / "c.jsonl")), stub_llm(reply))
    index, _ = SopIndex.build(corpus_copy, tmp_path / "idx", hashing_embedder, card_builder=builder)
    return index


def search(index, *overrides):
    # the component graph alone on top of evidence: card dense off (the card holds the alias), causal vote off
    cfg = load_config(SopragConfig, None, ["stage1.top_m=2", "fusion.voters.card_dense=0",
                                           "fusion.expert_votes.causal=0", "experts.component_min_sim=0.99",
                                           "experts.component_alias_links=true",
                                           *overrides])
    r = SopragRetriever(index, cfg)
    return r, r.search(QUERY, 5)


def test_component_graph_proposes_the_procedure_the_voters_miss(carded_index):
    r, result = search(carded_index, "fusion.expert_votes.entity=1")
    assert PDU in r.last_debug["proposed"] and r.last_debug["entity_links"] == {"pdu": 1.0}
    assert result.hits[0].doc_id == PDU and result.hits[0].details["entity"] == 1.0


def test_without_proposals_it_stays_out(carded_index):
    _, result = search(carded_index, "fusion.expert_votes.entity=1", "experts.propose=0")
    assert PDU not in [h.doc_id for h in result.hits]
    _, result = search(carded_index, "fusion.expert_votes.entity=0")
    assert PDU not in [h.doc_id for h in result.hits]


def test_causal_expert_proposes_from_the_whole_corpus(carded_index):
    cfg = load_config(SopragConfig, None, ["stage1.top_m=1", "experts.propose=3"])
    r = SopragRetriever(carded_index, cfg)
    r.search("the PDU juice splitter dropped one power feed of the servers", 5)
    assert len(r.last_debug["proposed"]) >= 1
    assert json.dumps(r.last_debug["proposed"])  # plain doc ids
