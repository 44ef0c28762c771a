"""LLM card building: one repair turn, a content-hash cache, LLM cost in the index telemetry."""

from __future__ import annotations

import json

import pytest

from sopr_rag.cards import llm as card_llm
from sopr_rag.cards.llm import CardBuilder, make_card_builder
from sopr_rag.cards.schema import CARD_JSON_SCHEMA
from sopr_rag.config import CardsConfig
from sopr_rag.index import SopIndex
from sopr_rag.ingest import parse_document

DOC = "# PDU Branch Breaker Trip\n\nSymptoms: rack PDU alarm.\n\n## Steps\n1. Reset the PDU breaker.\n"


def builder(tmp_path, llm, **kw) -> CardBuilder:
    return CardBuilder(CardsConfig(mode="llm", cache_path=str(tmp_path / "cards.jsonl"), batch_size=4, **kw), llm)


def test_rules_mode_builds_no_builder():
    assert make_card_builder(CardsConfig()) is None


def test_a_bad_reply_gets_one_repair_turn_naming_the_error(tmp_path, stub_llm, make_card):
    def reply(title, repair):
        return make_card("PDU", ["power strip"]) if repair else 'Sure! {"components": [{"name": "symptoms"}]}'

    llm = stub_llm(reply)
    b = builder(tmp_path, llm)
    card = b.build([parse_document("a.md", DOC)])["a.md"]
    assert card.components[0].name == "PDU" and card.components[0].aliases == ["power strip"]
    assert len(llm.prompts) == 2 and "'symptoms'" in llm.prompts[1][-1]["content"]
    assert llm.prompts[1][2] == {"role": "assistant", "content": 'Sure! {"components": [{"name": "symptoms"}]}'}
    s = b.stats
    assert (s.llm_calls, s.repairs, s.repaired, s.failures) == (2, 1, 1, 0)
    assert s.prompt_tokens > 0 and s.completion_tokens > 0 and s.llm_seconds >= 0


CLOCK_DOC = """---
title: Node Clock Not Synchronising
---

# NodeClockNotSynchronising

## Impact

Time is not automatically synchronizing on the node. This can cause issues with handling TLS.
"""
SAME = "The Node Clock is not synchronizing with the system clock"
CLOCK_V1_REPLY = json.dumps({  # what Qwen2.5-Coder-0.5B answered to the card-v1 prompt
    "components": [{"name": "Node Clock Not Synchronising", "aliases": ["Node Clock Not Synchronising"],
                    "function": "Checks if the Node Clock is not synchronizing with the system clock."}],
    "symptoms": [SAME], "conditions": [SAME], "causes": [SAME], "actions": ["Check the Node Clock"]})
CLOCK_GOOD = json.dumps({
    "components": [{"name": "node clock", "aliases": ["system time"], "function": "keeps the time of day right"}],
    "symptoms": ["servers disagree about the time"], "conditions": [], "causes": ["the time service is stopped"],
    "actions": ["check the time service"]})


@pytest.mark.parametrize("structured", [True, False])
def test_tautological_card_is_repaired_with_the_error_and_decoded_under_the_schema(tmp_path, stub_llm, structured):
    llm = stub_llm(lambda title, repair: CLOCK_GOOD if repair else CLOCK_V1_REPLY)
    b = builder(tmp_path, llm, structured=structured)
    card = b.build([parse_document("clock.md", CLOCK_DOC)])["clock.md"]
    assert card.components[0].name == "node clock" and card.symptoms == ["servers disagree about the time"]
    repair_turn = llm.prompts[1][-1]["content"]
    assert "is the alert title, not a part" in repair_turn and "symptoms only repeat the alert title" in repair_turn
    assert llm.prompts[1][2]["content"] == CLOCK_V1_REPLY
    assert (b.stats.llm_calls, b.stats.repairs, b.stats.repaired, b.stats.failures) == (2, 1, 1, 0)
    entry = json.loads((tmp_path / "cards.jsonl").read_text().splitlines()[-1])["value"]
    assert entry["repaired"] is True and entry["error"] is None and "alert title" in entry["first_error"]
    assert "reply" not in entry  # raw replies are kept for failures only
    # both turns decode under the card schema when structured output is on
    assert [p.schema() if p.json_schema else None for p in llm.params] == [CARD_JSON_SCHEMA if structured else None] * 2
    assert f"structured={structured}" in b.identity


def test_a_reply_still_bad_after_repair_is_a_cached_failure(tmp_path, stub_llm):
    llm = stub_llm(lambda title, repair: CLOCK_V1_REPLY)
    b = builder(tmp_path, llm)
    assert b.build([parse_document("clock.md", CLOCK_DOC)]) == {"clock.md": None}
    assert (b.stats.repairs, b.stats.repaired, b.stats.failures) == (1, 0, 1)
    entry = json.loads((tmp_path / "cards.jsonl").read_text().splitlines()[-1])["value"]
    assert entry["card"] is None and "alert title" in entry["error"] and entry["reply"] == CLOCK_V1_REPLY


def test_cards_of_an_older_prompt_version_are_not_reused(tmp_path, stub_llm, monkeypatch):
    monkeypatch.setattr(card_llm, "PROMPT_VERSION", "card-v1")
    builder(tmp_path, stub_llm()).build([parse_document("a.md", DOC)])
    monkeypatch.undo()
    again = builder(tmp_path, stub_llm())
    assert again.identity.startswith("card-v2|") and again.build([parse_document("a.md", DOC)])["a.md"] is not None
    assert again.stats.llm_calls == 1 and again.stats.cache_hits == 0


def test_no_repair_turn_when_switched_off_and_failures_are_cached(tmp_path, stub_llm):
    llm = stub_llm(lambda title, repair: "no idea")
    b = builder(tmp_path, llm, repair=False)
    assert b.build([parse_document("a.md", DOC)]) == {"a.md": None}
    assert (b.stats.llm_calls, b.stats.failures) == (1, 1)
    again = builder(tmp_path, stub_llm(), repair=False)
    assert again.build([parse_document("a.md", DOC)]) == {"a.md": None}  # cached failure: no retry, no call
    assert again.stats.llm_calls == 0 and again.stats.cache_hits == 1


def test_cache_is_keyed_by_content_and_model(tmp_path, stub_llm):
    first = builder(tmp_path, stub_llm())
    first.build([parse_document("a.md", DOC)])
    same = builder(tmp_path, stub_llm())
    same.build([parse_document("renamed.md", DOC)])  # same content: same card
    assert same.stats.llm_calls == 0
    other_model = builder(tmp_path, stub_llm(), model="another-model")
    other_model.build([parse_document("a.md", DOC)])
    assert other_model.stats.llm_calls == 1
    assert len((tmp_path / "cards.jsonl").read_text().splitlines()) == 2


def test_index_pays_only_for_changed_documents(corpus_copy, tmp_path, hashing_embedder, stub_llm):
    llm = stub_llm()
    _, report = SopIndex.build(corpus_copy, tmp_path / "idx", hashing_embedder, card_builder=builder(tmp_path, llm))
    tel = report.telemetry
    assert tel["llm_calls"] == 13 and tel["llm_tokens"] > 0 and tel["llm_failures"] == 0 and "llm_cards" in tel["seconds"]
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["cards"].startswith("card-v2|vllm|stub|")

    # a fresh index from the same corpus: every card comes from the content-hash cache
    llm2 = stub_llm()
    index, report = SopIndex.build(corpus_copy, tmp_path / "idx2", hashing_embedder, card_builder=builder(tmp_path, llm2))
    assert report.telemetry["llm_calls"] == 0 and report.telemetry["llm_cache_hits"] == 13 and not llm2.prompts
    pdu = index.docs["datacenter/pdu-breaker-trip.md"]
    assert pdu.card["components"][0]["name"] == "Rack" and pdu.card_text.splitlines()[1].startswith("Components:")

    # one edited document: one call, for it alone
    path = corpus_copy / "datacenter/pdu-breaker-trip.md"
    path.write_text(path.read_text().replace("16 A", "20 A"))
    llm3 = stub_llm()
    _, report = SopIndex.build(corpus_copy, tmp_path / "idx", hashing_embedder, card_builder=builder(tmp_path, llm3))
    assert report.changed == ["datacenter/pdu-breaker-trip.md"] and report.telemetry["llm_calls"] == 1
    assert llm3.titles() == ["Rack PDU Branch Circuit Breaker Trip"]


def test_switching_cards_rebuilds_the_artifacts(corpus_copy, tmp_path, hashing_embedder, stub_llm):
    SopIndex.build(corpus_copy, tmp_path / "idx", hashing_embedder, card_builder=builder(tmp_path, stub_llm()))
    index, report = SopIndex.build(corpus_copy, tmp_path / "idx", hashing_embedder)  # rules only now
    assert len(report.added) == 13 and all(d.card is None for d in index.docs.values())
    assert json.loads((tmp_path / "idx" / "manifest.json").read_text())["cards"] == "rules"
