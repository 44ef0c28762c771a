"""LLM card validation: lenient about shape, strict about content, errors a model can act on."""

from __future__ import annotations

import json

from sopr_rag.cards import parse_card

SOURCE = "Title: etcdNoLeader\nThe etcd cluster has no leader; the kube-apiserver cannot write."


def test_valid_card_in_prose_and_fences():
    reply = 'Here it is:\n```json\n{"components": [{"name": "etcd", "aliases": "cluster database", ' \
            '"function": "stores cluster state {as key/values}"}], "symptoms": "writes fail"}\n```'
    card, err = parse_card(reply, SOURCE)
    assert err is None
    assert card.components[0].aliases == ["cluster database"]  # a string where a list was asked
    assert card.components[0].function == "stores cluster state {as key/values}"  # braces inside a string
    assert card.symptoms == ["writes fail"] and card.causes == []


def test_components_as_bare_names_and_duplicates():
    card, err = parse_card(json.dumps({"components": ["etcd", "kube-apiserver"],
                                       "causes": ["disk slow", "Disk slow", "", 3]}), SOURCE)
    assert err is None and [c.name for c in card.components] == ["etcd", "kube-apiserver"]
    assert card.causes == ["disk slow", "3"]


def test_ungrounded_components_are_dropped_and_an_empty_card_is_an_error():
    card, err = parse_card(json.dumps({"components": [{"name": "symptoms"}, {"name": "Kafka"}]}), SOURCE)
    assert card is None and "'symptoms'" in err and "'Kafka'" in err
    card, err = parse_card(json.dumps({"components": [{"name": "Kafka"}, {"name": "etcd"}]}), SOURCE)
    assert err is None and [c.name for c in card.components] == ["etcd"]


def test_errors_name_the_problem():
    assert "no JSON object" in parse_card("I cannot help with that.", SOURCE)[1]
    assert "cut off" in parse_card('{"components": [{"name": "etcd"', SOURCE)[1]
    assert "invalid JSON" in parse_card('{"components": [,]}', SOURCE)[1]
    assert "components" in parse_card('{"components": 5}', SOURCE)[1]
    assert "at least one component" in parse_card('[{"name": "etcd"}]', SOURCE)[1]  # no card fields at all
