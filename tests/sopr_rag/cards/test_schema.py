"""LLM card validation: lenient about shape, strict about content, errors a model can act on."""

from __future__ import annotations

import json

import pytest

from sopr_rag.cards import parse_card
from sopr_rag.cards.llm import EXAMPLE, card_source
from sopr_rag.cards.schema import CARD_JSON_SCHEMA, MAX_COMPONENTS, MAX_ITEMS, max_card_chars
from sopr_rag.config import CardsConfig
from sopr_rag.ingest import parse_document

SOURCE = "Title: etcdNoLeader\nThe etcd cluster has no leader; the kube-apiserver cannot write."

# The three Prometheus runbooks of the first real run with Qwen2.5-Coder-0.5B (card-v1), as the LLM saw them
CLOCK = card_source(parse_document("node/NodeClockNotSynchronising.md", """---
title: Node Clock Not Synchronising
weight: 20
---

# NodeClockNotSynchronising

## Meaning

Clock not synchronising.

## Impact

Time is not automatically synchronizing on the node. This can cause issues with handling TLS as well as problems \
with other time-sensitive applications.

## Diagnosis

TODO

## Mitigation

See [Node Clok Skew Detected]({{< ref "./NodeClockSkewDetected.md" >}}) for mitigation steps.
"""), 2500)
RAID = card_source(parse_document("node/NodeRAIDDiskFailure.md", """---
title: Node RAID Disk Failure
weight: 20
---

# NodeRAIDDiskFailure

See [Node RAID Degraded]({{< ref "./NodeRAIDDegraded.md" >}})
"""), 2500)
FILES = card_source(parse_document("node/NodeFilesystemFilesFillingUp.md", """---
title: Node Filesystem Files Filling Up
---

# NodeFilesystemFilesFillingUp

## Meaning

This alert is similar to the NodeFilesystemSpaceFillingUp alert, but predicts the filesystem will run out of inodes
rather than bytes of storage space.

## Mitigation

Determine the application that is creating large numbers of files and adjust its configuration.
"""), 2500)

# card-v1 replies (the worked example of card-v1's prompt was a chiller; the RAID card copied it)
V1_EXAMPLE = json.dumps({
    "components": [{"name": "chiller", "aliases": ["cold-water machine", "cooling plant"],
                    "function": "makes the chilled water that cools the building"},
                   {"name": "condenser fan", "aliases": ["outdoor fan"],
                    "function": "blows outside air over the coils to remove heat"}],
    "symptoms": ["the cooling plant stops with a pressure alarm", "rooms get warm"],
    "conditions": ["refrigerant pressure above the trip limit"], "causes": ["dirty coils", "a fan has failed"],
    "actions": ["check the fans", "clean the coils", "reset the chiller"]})
RAID_REPLY = json.dumps({"components": [], **{k: v for k, v in json.loads(V1_EXAMPLE).items() if k != "components"}})
SAME = "The Node Clock is not synchronizing with the system clock"
CLOCK_REPLY = json.dumps({
    "components": [{"name": "Node Clock Not Synchronising", "aliases": ["Node Clock Not Synchronising"],
                    "function": "Checks if the Node Clock is not synchronizing with the system clock."}],
    "symptoms": [SAME], "conditions": [SAME], "causes": [SAME],
    "actions": ["Check the Node Clock", "Reset the Node Clock"]})
FILES_REPLY = ('{"components": [{"name": "filesystem", "aliases": ["disk", "storage"], "function": "stores the '
               'files of the node"}, {"name": "inodes", "aliases": ["file slots"], "function": "one per file; a '
               'filesystem has a fixed number"}], "symptoms": ["applications cannot create new files", "pods fail '
               'to start"], "conditions": ["the filesystem will run out of inodes within four hours"], "causes": '
               '["an application creates many small')  # cut off at max_new_tokens
GOOD_CLOCK = json.dumps({
    "components": [{"name": "node clock", "aliases": ["system time", "server clock"],
                    "function": "keeps the time of day in step with time servers"}],
    "symptoms": ["servers disagree about the time", "TLS handshakes fail"],
    "conditions": ["time is not synchronizing automatically"], "causes": ["the NTP service is stopped"],
    "actions": ["check the time service", "follow the clock skew runbook"]})


def card(**kw) -> str:
    base = {"components": [{"name": "etcd", "aliases": ["cluster database"], "function": "stores cluster state"}],
            "symptoms": ["writes fail"], "conditions": [], "causes": ["a slow disk"], "actions": ["restart it"]}
    return json.dumps({**base, **kw})


def test_valid_card_in_prose_and_fences():
    reply = 'Here it is:\n```json\n{"components": [{"name": "etcd", "aliases": "cluster database", ' \
            '"function": "stores cluster state {as key/values}"}], "symptoms": "writes fail", "causes": "slow disk"}\n```'
    card_, err = parse_card(reply, SOURCE)
    assert err is None
    assert card_.components[0].aliases == ["cluster database"]  # a string where a list was asked
    assert card_.components[0].function == "stores cluster state {as key/values}"  # braces inside a string
    assert card_.symptoms == ["writes fail"] and card_.causes == ["slow disk"]


def test_components_as_bare_names_duplicates_and_long_lists():
    card_, err = parse_card(json.dumps({"components": ["etcd", "kube-apiserver", "etcd member", "etcd peer"],
                                        "symptoms": ["writes fail"],
                                        "causes": ["disk slow", "Disk slow", "", 3, "network partition", "a", "b"]}),
                            SOURCE)
    assert err is None and [c.name for c in card_.components] == ["etcd", "kube-apiserver", "etcd member"]
    assert card_.causes == ["disk slow", "3", "network partition", "a"]  # first MAX_ITEMS distinct items
    assert len(card_.components) == MAX_COMPONENTS and len(card_.causes) == MAX_ITEMS


def test_ungrounded_components_are_dropped_and_none_left_is_an_error():
    card_, err = parse_card(card(components=[{"name": "symptoms"}, {"name": "Kafka"}]), SOURCE)
    assert card_ is None and "components is empty" in err and "'symptoms'" in err and "'Kafka'" in err
    card_, err = parse_card(card(components=[{"name": "Kafka"}, {"name": "etcd"}]), SOURCE)
    assert err is None and [c.name for c in card_.components] == ["etcd"]


def test_errors_name_the_problem():
    assert "no JSON object" in parse_card("I cannot help with that.", SOURCE)[1]
    assert "cut off" in parse_card('{"components": [{"name": "etcd"', SOURCE)[1]
    assert "invalid JSON" in parse_card('{"components": [,]}', SOURCE)[1]
    assert "components" in parse_card('{"components": 5}', SOURCE)[1]
    assert "components is empty" in parse_card('[{"name": "etcd"}]', SOURCE)[1]  # no card fields at all


def test_v1_raid_card_empty_components_and_copied_example_is_rejected():
    _, err = parse_card(RAID_REPLY, RAID, EXAMPLE)
    assert err.startswith("components is empty: name 1-3 software or hardware parts")
    # copying is caught against whatever example the prompt showed
    _, err = parse_card(RAID_REPLY, RAID, V1_EXAMPLE)
    assert "copied from the format example: 'the cooling plant stops with a pressure alarm', 'rooms get warm'" in err
    assert "components is empty" in err
    # a card that names a real part but copies the example's content is rejected as well
    reply = json.dumps({**json.loads(RAID_REPLY), "components": [{"name": "RAID disk", "aliases": ["array disk"],
                                                                   "function": "holds data with a mirror copy"}]})
    _, err = parse_card(reply, RAID, V1_EXAMPLE)
    assert err.startswith("copied from the format example") and "components" not in err


def test_copied_placeholders_are_rejected():
    reply = json.loads(EXAMPLE)
    reply["components"][0]["name"] = "node clock"
    _, err = parse_card(json.dumps(reply), CLOCK, EXAMPLE)
    assert err.startswith("copied from the format example: '<another name for it>'")


def test_v1_clock_card_title_component_and_one_sentence_everywhere_is_rejected():
    _, err = parse_card(CLOCK_REPLY, CLOCK, EXAMPLE)
    assert err == ("component 'Node Clock Not Synchronising' is the alert title, not a part; name the software or "
                   "hardware it is about; symptoms only repeat the alert title: say what an operator would notice, "
                   "in everyday words; causes only repeat the symptoms or the title: give likely root causes in "
                   "other words")


@pytest.mark.parametrize("function,ok", [
    ("the clock of the node", False),  # its name again
    ("the node clock is not synchronising", False),  # its name and the alert title, nothing else
    ("Node Clock", False),
    ("keeps the time of day in step with time servers", True),
    ("keeps the node's time", True),
])
def test_function_that_restates_the_name_or_the_title_is_rejected(function, ok):
    reply = json.loads(GOOD_CLOCK)
    reply["components"][0]["function"] = function
    _, err = parse_card(json.dumps(reply), CLOCK, EXAMPLE)
    if ok:
        assert err is None
    else:
        assert err == "the function of 'node clock' only restates its name; say what it does in other plain words"


@pytest.mark.parametrize("name,ok", [("Node Clock Not Synchronising", False), ("NodeClockNotSynchronising", False),
                                     ("node clock", True), ("clock", True)])
def test_title_as_component(name, ok):
    reply = json.loads(GOOD_CLOCK)
    reply["components"][0]["name"] = name
    _, err = parse_card(json.dumps(reply), CLOCK, EXAMPLE)
    assert (err is None) == ok, err
    # a one-word title may well be the component itself
    _, err = parse_card(card(), "Title: etcd\nThe etcd cluster has no leader.", EXAMPLE)
    assert err is None


def test_a_component_given_twice_is_one_component_and_one_problem():
    title = {"name": "Node Filesystem Files Filling Up", "aliases": ["disk full"], "function": "fills the disk"}
    reply = {"components": [title, title], "symptoms": ["new files cannot be created"], "causes": ["many small files"]}
    _, err = parse_card(json.dumps(reply), FILES, EXAMPLE)
    assert err == ("component 'Node Filesystem Files Filling Up' is the alert title, not a part; name the software "
                   "or hardware it is about")
    fs = {"name": "filesystem", "aliases": ["disk"], "function": "keeps the data of the node"}
    card_, err = parse_card(json.dumps({**reply, "components": [fs, fs]}), FILES, EXAMPLE)
    assert err is None and len(card_.components) == 1


def test_near_duplicates_are_removed_across_lists():
    card_, err = parse_card(card(symptoms=["writes fail", "Writes are failing"], conditions=["writes fail"],
                                 causes=["writes failing", "a slow disk"]), SOURCE, EXAMPLE)
    assert err is None and card_.symptoms == ["writes fail"] and card_.conditions == [] and card_.causes == ["a slow disk"]
    _, err = parse_card(card(symptoms=["writes fail"], causes=["writes fail"]), SOURCE, EXAMPLE)
    assert err == "causes only repeat the symptoms or the title: give likely root causes in other words"
    _, err = parse_card(card(symptoms=["writes fail"], causes=[]), SOURCE, EXAMPLE)
    assert err == "give at least one likely cause or condition besides the symptoms"
    _, err = parse_card(card(symptoms=[]), SOURCE, EXAMPLE)
    assert err == "symptoms is empty: say what an operator would notice"


def test_aliases_that_repeat_the_name_are_dropped():
    card_, err = parse_card(card(components=[{"name": "etcd", "aliases": ["ETCD", "etcd", "key-value store"],
                                              "function": "stores cluster state"}]), SOURCE, EXAMPLE)
    assert err is None and card_.components[0].aliases == ["key-value store"]


def test_v1_cut_off_reply_is_rejected_with_the_bounds():
    _, err = parse_card(FILES_REPLY, FILES, EXAMPLE)
    assert err == ("the JSON object is not closed (the reply was cut off); write a shorter one: at most 3 components "
                   "and 4 items per list, each under 12 words")


def test_a_good_card_passes():
    card_, err = parse_card(GOOD_CLOCK, CLOCK, EXAMPLE)
    assert err is None and card_.components[0].aliases == ["system time", "server clock"]
    assert card_.symptoms == ["servers disagree about the time", "TLS handshakes fail"]
    assert card_.causes == ["the NTP service is stopped"] and len(card_.actions) == 2


def test_decoding_schema_fits_the_token_budget_and_admits_a_good_card():
    # the longest card the schema admits stays under max_new_tokens at a pessimistic 3.2 characters a token
    assert max_card_chars() / 3.2 < CardsConfig().max_new_tokens
    schema = CARD_JSON_SCHEMA
    assert schema["properties"]["components"]["maxItems"] == MAX_COMPONENTS
    assert all(schema["properties"][f]["maxItems"] == MAX_ITEMS for f in ("symptoms", "conditions", "causes"))
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(json.loads(GOOD_CLOCK), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**json.loads(GOOD_CLOCK), "components": []}, schema)


def test_xgrammar_compiles_the_decoding_schema():
    """The grammar vLLM builds from the schema (xgrammar, compact JSON) accepts a good card and the bounds."""
    xgr = pytest.importorskip("xgrammar")
    from xgrammar.testing import _is_grammar_accept_string

    grammar = xgr.Grammar.from_json_schema(json.dumps(CARD_JSON_SCHEMA), any_whitespace=False, separators=(",", ":"))
    good = json.loads(GOOD_CLOCK)
    assert _is_grammar_accept_string(grammar, json.dumps(good, separators=(",", ":")))
    too_many = {**good, "symptoms": ["a symptom"] * (MAX_ITEMS + 1)}
    assert not _is_grammar_accept_string(grammar, json.dumps(too_many, separators=(",", ":")))
