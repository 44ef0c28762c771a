"""The component knowledge base: titles map to the part they are about, the packaged YAML is consistent, and
as the glossary source it feeds the component graph with no LLM (a description reaches its part's runbooks,
a query naming a part makes the graph abstain)."""

from __future__ import annotations

import json

import pytest

from sopr_rag.cards.glossary import make_glossary_builder
from sopr_rag.cards.knowledge import VERSION, KnowledgeBase, KnowledgeGlossaryBuilder
from sopr_rag.config import CardsConfig, ExpertConfig, FusionConfig, SopragConfig
from sopr_rag.experts.base import Query
from sopr_rag.experts.components import ComponentGraph
from sopr_rag.index import SopIndex
from sopr_rag.pipeline import SopragRetriever
from sopr_rag.types import Procedure

KB_YAML = """
components:
  - name: Alertmanager
    match: [Alertmanager]
    aliases: [notifier, paging service]
    function: sends the notifications (pages, email) for firing problems to the people on call
  - name: etcd
    match: [etcd]
    aliases: [cluster database]
    function: replicated key-value database that stores all cluster state and needs a majority of members
  - name: kubelet
    match: [Kubelet]
    aliases: [node agent]
    function: agent on every machine that starts the containers of its pods and reports their health
  - name: DaemonSet
    match: [KubeDaemonSet]
    function: runs one copy of a workload on every machine
  - name: RAID array
    match: [NodeRAID]
    function: disks mirrored for redundancy on one host
  - name: system clock
    match: [NodeClock]
    function: the host's time, kept in sync over the network
"""


def proc(doc_id: str, title: str) -> Procedure:
    return Procedure(doc_id=doc_id, title=title, text=title, content_hash="h")


@pytest.fixture()
def kb(tmp_path) -> KnowledgeBase:
    (tmp_path / "kb.yaml").write_text(KB_YAML)
    return KnowledgeBase.load(tmp_path / "kb.yaml")


def test_a_runbook_gets_the_part_its_title_names_first_then_its_folder(kb):
    assert kb.component_of(proc("x/KubeletTooManyPods.md", "Kubelet Too Many Pods")).name == "kubelet"
    assert kb.component_of(proc("x/a.md", "KubeDaemonSetRolloutStuck")).name == "DaemonSet"  # split, joined
    assert kb.component_of(proc("x/a.md", "Kube Daemon Set Mis Scheduled")).name == "DaemonSet"
    assert kb.component_of(proc("alerts/etcd/a.md", "Members are down")).name == "etcd"  # the folder
    assert kb.component_of(proc("alerts/general/a.md", "Something else")) is None
    # the earliest identifier in the title wins: about Alertmanager, though it mentions the kubelet later
    assert kb.component_of(proc("x/a.md", "AlertmanagerKubeletLink")).name == "Alertmanager"


def test_bad_knowledge_is_refused_with_the_entry_named(tmp_path):
    (tmp_path / "dup.yaml").write_text("components:\n- {name: alpha, match: [Foo], function: f}\n"
                                       "- {name: beta, match: [foo], function: g}\n")
    with pytest.raises(ValueError, match="'foo' matches both alpha and beta"):
        KnowledgeBase.load(tmp_path / "dup.yaml")
    (tmp_path / "nofn.yaml").write_text("components:\n- {name: alpha, match: [Foo]}\n")
    with pytest.raises(ValueError, match=r"nofn.yaml#0.*function"):
        KnowledgeBase.load(tmp_path / "nofn.yaml")


def test_the_packaged_knowledge_loads_and_covers_the_common_parts():
    kb = KnowledgeBase.load()
    assert len(kb.entries) >= 100 and all(e.function and len(e.function) <= 400 for e in kb.entries)
    cases = {"KubeletPlegDurationHigh": "kubelet", "CPU Throttling High": "CPU limits", "etcdNoLeader": "etcd",
             "AlertmanagerClusterCrashlooping": "Alertmanager", "ODFRBDClientBlocked": "Ceph RBD",
             "PrometheusTSDBCompactionsFailing": "Prometheus TSDB", "VirtHandlerDown": "virt-handler"}
    for title, name in cases.items():
        assert kb.component_of(proc(f"x/{title}.md", title)).name == name, title


def test_as_the_glossary_source_it_feeds_the_graph_without_an_llm(runbooks, tmp_path, hashing_embedder, kb):
    cfg = CardsConfig(glossary=True, glossary_source="knowledge", knowledge=str(tmp_path / "kb.yaml"))
    builder = make_glossary_builder(cfg)
    assert isinstance(builder, KnowledgeGlossaryBuilder) and builder.identity.startswith(f"{VERSION}|")
    idx = tmp_path / "idx"
    index, report = SopIndex.build(runbooks, idx, hashing_embedder, glossary_builder=builder)
    meta = json.loads((idx / "manifest.json").read_text())["glossary"]
    assert meta["named_by_knowledge"] == 10 and meta["components"] == 6 and report.telemetry["llm_calls"] == 0
    graph = ComponentGraph(list(index.docs.values()))
    scores, links = graph.score(Query.encode("our paging service is down", hashing_embedder),
                                ExpertConfig(component_alias_links=True))
    assert links["alertmanag"] == 1.0  # an alias, by its words
    assert set(sorted(scores, key=scores.get, reverse=True)[:2]) == {
        "content/runbooks/alertmanager/AlertmanagerFailedToSendAlerts.md",
        "content/runbooks/alertmanager/AlertmanagerClusterDown.md"}
    assert graph.named(Query.encode("etcd has no leader", hashing_embedder)) == ["etcd"]
    assert graph.named(Query.encode("the cluster database has no leader", hashing_embedder)) == []
    # editing the knowledge changes the identity, so the next update rebuilds the glossary
    (tmp_path / "kb.yaml").write_text(KB_YAML.replace("cluster database", "state store"))
    assert KnowledgeGlossaryBuilder(KnowledgeBase.load(tmp_path / "kb.yaml")).identity != builder.identity


def test_the_graph_abstains_on_a_query_that_names_a_part(runbooks, tmp_path, hashing_embedder, kb):
    index, _ = SopIndex.build(runbooks, tmp_path / "idx", hashing_embedder,
                              glossary_builder=KnowledgeGlossaryBuilder(kb))
    fusion = FusionConfig(expert_votes={"entity": 1.0})
    for abstain in (False, True):
        experts = ExpertConfig(component_abstain_named=abstain, component_vote_by_link=False, component_alias_links=True)
        r = SopragRetriever(index, SopragConfig(fusion=fusion, experts=experts))
        named = r.search("etcd members are down", 5)
        assert (named.expert_weights["entity"] == 0.0) is abstain
        described = r.search("the cluster database lost members", 5)
        assert described.expert_weights["entity"] > 0  # a description: the graph votes either way


def test_the_vote_is_scaled_by_the_best_links_confidence(runbooks, tmp_path, hashing_embedder, kb):
    index, _ = SopIndex.build(runbooks, tmp_path / "idx", hashing_embedder,
                              glossary_builder=KnowledgeGlossaryBuilder(kb))
    fusion = FusionConfig(expert_votes={"entity": 2.0})
    for by_link in (False, True):
        r = SopragRetriever(index, SopragConfig(fusion=fusion, experts=ExpertConfig(component_vote_by_link=by_link)))
        r.search("the cluster database lost members", 5)
        links = r.last_debug["entity_links"]
        assert links and max(links.values()) < 1.0  # meaning links only (the default)
        want = 2.0 * max(links.values()) if by_link else 2.0
        assert r.last_debug["votes"]["entity"] == pytest.approx(want)
