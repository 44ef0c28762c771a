"""Entity expert: query-entity linking and personalised PageRank against a naive power iteration."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from sopr_rag.config import ExpertConfig
from sopr_rag.experts import entity
from sopr_rag.experts.base import Query

CFG = ExpertConfig()


def q(text, emb):
    return Query.encode(text, emb)


def naive_ppr(docs, seeds, damping, iters=500):
    """Dense power iteration over a networkx graph built independently from the documents."""
    graph = nx.Graph()
    for d in docs:
        p = ("proc", d.proc.doc_id)
        graph.add_node(p)
        seen = set()
        for s, ents in enumerate(d.entity["step_mentions"]):
            graph.add_edge(p, ("step", d.proc.doc_id, s))
            for e in ents:
                graph.add_edge(("step", d.proc.doc_id, s), ("ent", d.entity["keys"][e]))
                seen.add(e)
        for e, k in enumerate(d.entity["keys"]):
            if e not in seen:
                graph.add_edge(p, ("ent", k))
    nodes = list(graph.nodes)
    pos = {n: i for i, n in enumerate(nodes)}
    a = np.zeros((len(nodes), len(nodes)))
    for u, v in graph.edges:
        a[pos[v], pos[u]] = a[pos[u], pos[v]] = 1.0
    a /= a.sum(axis=0, keepdims=True)  # column-stochastic: every node has an edge
    r = np.zeros(len(nodes))
    for n, w in seeds.items():
        r[pos[n]] = w
    r /= r.sum()
    x = r.copy()
    for _ in range(iters):
        x = damping * a @ x + (1 - damping) * r
    return dict(zip(nodes, x))


def entity_graph_nx(docs):
    nodes, adj = entity.build_graph(docs)
    g = nx.Graph()
    g.add_nodes_from(nodes)
    rows, cols = adj.nonzero()
    g.add_edges_from((nodes[i], nodes[j]) for i, j in zip(rows, cols))
    return g


def test_exact_links_and_ppr_match_naive_reference(hashed_docs, hashing_embedder):
    docs = list(hashed_docs.values())
    query = q("GEN-1 shows FAIL TO START on the BMS", hashing_embedder)
    scores, links = entity.score(query, docs, CFG)
    assert links[entity.entity_key("GEN-1")] == 1.0 and links[entity.entity_key("BMS")] == 1.0
    seeds = {("ent", k): w for k, w in links.items()}
    ref = naive_ppr(docs, seeds, CFG.ppr_damping)
    ref_nx = nx.pagerank(entity_graph_nx(docs), alpha=CFG.ppr_damping, personalization=seeds, tol=1e-10,
                        max_iter=1000)
    assert max(abs(ref[n] - ref_nx[n]) for n in ref) < 1e-6  # the naive reference agrees with networkx
    expected = {d.proc.doc_id: 0.0 for d in docs}
    for node, mass in ref.items():
        if node[0] in ("proc", "step"):
            expected[node[1]] += mass
    for d in expected:
        assert scores[d] == pytest.approx(expected[d], abs=1e-6)
    top2 = sorted(scores, key=scores.get, reverse=True)[:2]
    assert set(top2) == {"datacenter/ups-on-battery-generator-failed.md", "datacenter/ups-on-battery-utility-outage.md"}


def test_fuzzy_link_survives_a_typo(hashed_docs, hashing_embedder):
    links = entity.link_query(q("alarm CRAC_HIGH_SUPLY_TEMP again", hashing_embedder), list(hashed_docs.values()), CFG)
    key = entity.entity_key("CRAC_HIGH_SUPPLY_TEMP")
    assert CFG.fuzzy_threshold <= links[key] < 1.0


def test_no_linked_entity_scores_zero(hashed_docs, hashing_embedder):
    cfg = ExpertConfig(embed_threshold=1.0)
    scores, links = entity.score(q("zzz qqq", hashing_embedder), list(hashed_docs.values()), cfg)
    assert links == {} and set(scores.values()) == {0.0}


def test_scoring_is_restricted_to_the_pruned_set(hashed_docs, hashing_embedder):
    pruned = [hashed_docs["datacenter/pdu-breaker-trip.md"], hashed_docs["building_management/ahu-freeze-stat-trip.md"]]
    scores, _ = entity.score(q("GEN-1 and AHU_FREEZE_STAT", hashing_embedder), pruned, CFG)
    assert set(scores) == {d.proc.doc_id for d in pruned}
    assert scores["building_management/ahu-freeze-stat-trip.md"] > scores["datacenter/pdu-breaker-trip.md"]
