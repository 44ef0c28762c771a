"""Entity expert: entities <-> steps <-> procedures graph, personalised PageRank from query entities.

Query entities are linked three ways (exact token match, fuzzy character-trigram match, embedding
cosine), each link seeding the PageRank restart vector with its confidence. PageRank runs only on the
subgraph of the stage-1 pruned procedures; a procedure scores its own node's mass plus its steps'.
Entities shared between procedures are one node, so evidence flows to the procedures that share them.
"""

from __future__ import annotations

import re

import numpy as np
from scipy import sparse

from sopr_rag.config import ExpertConfig
from sopr_rag.experts.base import DocArtifacts, Query, cosines
from sopr_rag.retrieval.lexical import tokenize
from sopr_rag.types import Procedure

MIN_FUZZY_CHARS = 5
DENSE_PPR_MAX_NODES = 3000


def entity_key(name: str) -> str:
    """Canonical node key: stemmed tokens, so 'GEN-1', 'gen 1' and '`GEN-1`' are one entity."""
    return " ".join(tokenize(name))


def build_part(proc: Procedure) -> dict:
    """Entity names and which steps mention them (case-insensitive substring or all-token match)."""
    names, keys = [], []
    for e in proc.entities:
        k = entity_key(e)
        if k and k not in keys and not all(t.isdigit() for t in k.split()):
            names.append(e)
            keys.append(k)
    mentions = []
    for step in proc.steps:
        low, toks = step.text.lower(), set(tokenize(step.text))
        mentions.append([i for i, (n, k) in enumerate(zip(names, keys))
                         if n.lower() in low or set(k.split()) <= toks])
    return {"names": names, "keys": keys, "step_mentions": mentions}


def _trigrams(text: str) -> frozenset[str]:
    t = f" {re.sub(r'[^a-z0-9]+', ' ', text.lower()).strip()} "
    return frozenset(t[i:i + 3] for i in range(len(t) - 2))


def _prepared(doc: DocArtifacts) -> dict:
    """Per-document lookups, computed once per loaded index: token sets, trigrams, local graph edges."""
    if "entity" not in doc.derived:
        part, pid = doc.entity, ("proc", doc.proc.doc_id)
        edges, mentioned = [], set()
        for s, ents in enumerate(part["step_mentions"]):
            snode = ("step", doc.proc.doc_id, s)
            edges.append((pid, snode))
            for e in ents:
                edges.append((snode, ("ent", part["keys"][e])))
                mentioned.add(e)
        # card-level entities (title, triggers, tables) attach to the procedure node itself
        edges += [(pid, ("ent", k)) for e, k in enumerate(part["keys"]) if e not in mentioned]
        doc.derived["entity"] = {
            "tokens": [frozenset(k.split()) for k in part["keys"]],
            "trigrams": [_trigrams(n) if len(n) >= MIN_FUZZY_CHARS else None for n in part["names"]],
            "edges": edges,
        }
    return doc.derived["entity"]


def link_query(query: Query, docs: list[DocArtifacts], cfg: ExpertConfig) -> dict[str, float]:
    """Entity key -> link confidence in [0, 1] (best of exact / fuzzy / embedding)."""
    links: dict[str, float] = {}
    words = re.findall(r"[A-Za-z0-9_\-]+", query.text)
    grams = [_trigrams(w) for w in words if len(w) >= MIN_FUZZY_CHARS]
    grams += [_trigrams(f"{a} {b}") for a, b in zip(words, words[1:])]
    embed_hits: list[tuple[float, str]] = []
    for doc in docs:
        prep = _prepared(doc)
        sims = cosines(query, doc.vectors.get("entities"))
        for i, key in enumerate(doc.entity["keys"]):
            toks, tg = prep["tokens"][i], prep["trigrams"][i]
            score = 1.0 if toks and toks <= query.tokens else 0.0
            if score < 1.0 and tg is not None:
                # Jaccard >= t needs the smaller set to be >= t * the larger: skip hopeless pairs cheaply
                lo, hi = cfg.fuzzy_threshold * len(tg), len(tg) / cfg.fuzzy_threshold
                best = max((len(tg & g) / len(tg | g) for g in grams if lo <= len(g) <= hi), default=0.0)
                if best >= cfg.fuzzy_threshold:
                    score = best
            if i < len(sims) and sims[i] >= cfg.embed_threshold:
                embed_hits.append((float(sims[i]), key))
            if score > 0:
                links[key] = max(links.get(key, 0.0), score)
    for sim, key in sorted(embed_hits, reverse=True)[:cfg.max_embed_links]:
        links[key] = max(links.get(key, 0.0), sim)
    return links


def build_graph(docs: list[DocArtifacts]) -> tuple[list[tuple], sparse.csr_matrix]:
    """Undirected, unweighted graph of the pruned procedures: (node list, symmetric 0/1 adjacency)."""
    index: dict[tuple, int] = {}
    rows, cols = [], []
    for doc in docs:
        for u, v in _prepared(doc)["edges"]:
            rows.append(index.setdefault(u, len(index)))
            cols.append(index.setdefault(v, len(index)))
    n = len(index)
    adj = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)).tocsr()
    adj = ((adj + adj.T) > 0).astype(np.float64)  # an edge listed twice is still one edge
    return list(index), adj


def personalized_pagerank(adj: sparse.csr_matrix, restart: np.ndarray, damping: float,
                          tol: float = 1e-9, max_iter: int = 200) -> np.ndarray:
    """x = damping * P x + (1 - damping) * r, P column-stochastic; dangling mass returns via r."""
    deg = np.asarray(adj.sum(axis=0)).ravel()
    inv = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
    trans = adj @ sparse.diags(inv)
    if trans.shape[0] <= DENSE_PPR_MAX_NODES:  # pruned graphs are small: dense matvec beats sparse overhead
        trans = trans.toarray()
    dangling = deg == 0
    r = restart / restart.sum()
    x = r.copy()
    for _ in range(max_iter):
        nxt = damping * (trans @ x + x[dangling].sum() * r) + (1 - damping) * r
        if np.abs(nxt - x).sum() < tol:
            return nxt
        x = nxt
    return x


def score(query: Query, docs: list[DocArtifacts], cfg: ExpertConfig) -> tuple[dict[str, float], dict[str, float]]:
    """(procedure -> PPR score, linked entity key -> confidence). All zeros when nothing links."""
    links = link_query(query, docs, cfg)
    out = {d.proc.doc_id: 0.0 for d in docs}
    if not links:
        return out, links
    nodes, adj = build_graph(docs)
    pos = {n: i for i, n in enumerate(nodes)}
    restart = np.zeros(len(nodes))
    for key, w in links.items():
        if ("ent", key) in pos:
            restart[pos[("ent", key)]] = w
    if restart.sum() <= 0:
        return out, links
    mass = personalized_pagerank(adj, restart, cfg.ppr_damping)
    for node, m in zip(nodes, mass):
        if node[0] in ("proc", "step"):
            out[node[1]] += float(m)
    return out, links
