"""Identifier splitting everywhere titles are indexed, and a card text that repeats nothing."""

from __future__ import annotations

import pytest

from sopr_rag.cards import LLMCard, build_card
from sopr_rag.ingest import parse_document
from sopr_rag.retrieval.identifiers import humanize, split_parts
from sopr_rag.retrieval.lexical import tokenize

RUNBOOK = """# etcdNoLeader

## Meaning

This alert fires when the etcd cluster has no leader. It is usually caused by a network partition.

## Impact

The `kube_apiserver` cannot write. It is usually caused by a network partition.

## Diagnosis

Check the `etcd.service` logs.
"""


@pytest.mark.parametrize("word, parts", [
    ("etcdNoLeader", ["etcd", "No", "Leader"]), ("KubeAPIDown", ["Kube", "API", "Down"]),
    ("NodeRAIDDegraded", ["Node", "RAID", "Degraded"]), ("kube_pod_status", ["kube", "pod", "status"]),
    ("kubelet.service", ["kubelet", "service"]), ("config-reloader", ["config", "reloader"]),
])
def test_split_parts(word, parts):
    assert split_parts(word) == parts


def test_humanize_splits_identifiers_and_keeps_plain_words():
    assert humanize("alert etcdNoLeader on KubeAPIDown, see kube_pod_status.") == \
        "alert etcd No Leader on Kube API Down, see kube pod status."
    assert humanize("The API is down, CPU at 90%.") == "The API is down, CPU at 90%."


def test_bm25_tokens_keep_the_whole_identifier_and_its_parts():
    toks = tokenize("AlertmanagerFailedReload")
    assert toks[0] == "alertmanagerfailedreload" and {"alertmanag", "fail", "reload"} <= set(toks)


def test_card_text_splits_the_title_and_repeats_no_sentence():
    card = build_card(parse_document("etcd/etcdNoLeader.md", RUNBOOK))
    text = card.text()
    assert text.startswith("etcd No Leader")
    assert text.count("network partition") == 1  # Meaning, cause and Impact share that sentence: once
    assert "kube apiserver" in text and "kube_apiserver" not in text.split("Entities:")[0]


def test_llm_card_fields_lead_the_card():
    llm = LLMCard.model_validate({"components": [{"name": "etcd", "aliases": ["cluster database"],
                                                  "function": "stores all cluster state"}],
                                  "symptoms": ["writes are refused"], "actions": ["restore quorum"]})
    text = build_card(parse_document("etcd/etcdNoLeader.md", RUNBOOK), llm).text()
    lines = text.splitlines()
    assert lines[1] == "Components: etcd, cluster database: stores all cluster state"
    assert lines[2].startswith("Symptoms: writes are refused")
    assert "Actions: restore quorum" in text


def test_title_gets_the_file_name_when_it_says_more():
    doc = "---\ntitle: Kubelet Down\n---\n# KubeletDown\n\n## Meaning\n\nNo kubelet answers.\n"
    assert build_card(parse_document("k/KubeletDown.md", doc)).title == "Kubelet Down"
    other = build_card(parse_document("k/KubeletUnreachable.md", doc)).title
    assert other == "Kubelet Down (Kubelet Unreachable)"
