"""Component graph: which system parts each SOP concerns, what they are called in plain words, what they do.

Per document (`build_part`, saved in the entity part): the components of its LLM card (name, aliases,
function; the first is the one the SOP is about) and the folders it sits in (runbook collections group
by component: `alertmanager/`, `etcd/`). The corpus graph (networkx, assembled at query time from the
per-document parts, so an incremental update equals a fresh build) joins one node per component key to
the procedures that concern it; a folder on more than half of the procedures names no component and is
dropped.

A query links to a component lexically (all tokens of its name or of one alias occur in the query:
confidence 1) or by meaning: the cosine of the query to the component's profiles (LLM "name, aliases:
function" texts, and the mean title vector of its procedures), top `component_links` components within
`component_margin` of the best and above `component_min_sim`. Linked components propagate their
confidence one hop to their procedures (x `secondary_weight` for a non-primary LLM component); the sum
is the procedure's score, so a procedure about two linked components ranks above one about either.
This is what lets "the service that sends out our pages" reach the notifier's runbooks when the LLM
card says the notifier "sends alert notifications (pages, email) to receivers".
"""

from __future__ import annotations

from pathlib import PurePosixPath

import networkx as nx
import numpy as np

from sopr_rag.cards.schema import LLMCard
from sopr_rag.config import ExpertConfig
from sopr_rag.experts.base import DocArtifacts, Query
from sopr_rag.retrieval.identifiers import humanize
from sopr_rag.retrieval.lexical import tokenize
from sopr_rag.types import Procedure

SECONDARY_WEIGHT = 0.5  # a component the SOP mentions beside its main one


def component_key(name: str) -> str:
    return " ".join(tokenize(humanize(name).replace("-", " ")))


def build_part(proc: Procedure, card: LLMCard | None = None) -> list[dict]:
    """[{key, name, aliases, function, source, primary}] for one SOP; `profile` texts get embedded."""
    out: list[dict] = []
    seen: set[str] = set()

    def add(name: str, aliases: list[str], function: str, source: str, primary: bool) -> None:
        key = component_key(name)
        if key and key not in seen:
            seen.add(key)
            out.append({"key": key, "name": name, "aliases": aliases, "function": function, "source": source,
                        "primary": primary, "profile": _profile(name, aliases, function)})

    for i, c in enumerate(card.components if card else []):
        add(c.name, c.aliases, c.function, "llm", i == 0)
    for folder in PurePosixPath(proc.doc_id).parent.parts:
        add(folder.replace("_", " ").replace("-", " "), [], "", "folder", True)
    return out


def _profile(name: str, aliases: list[str], function: str) -> str:
    names = ", ".join([humanize(name)] + [a for a in aliases if a.lower() != name.lower()])
    return f"{names}: {function}" if function else names


class ComponentGraph:
    """Corpus-wide component <-> procedure graph with each component's profile vectors and alias tokens."""

    def __init__(self, docs: list[DocArtifacts]):
        self.graph = nx.Graph()
        vecs: dict[str, list[np.ndarray]] = {}
        self.aliases: dict[str, list[frozenset[str]]] = {}
        for doc in docs:
            pid = doc.proc.doc_id
            self.graph.add_node(("proc", pid))
            pvecs = doc.vectors.get("components")
            for i, comp in enumerate(doc.entity.get("components", [])):
                node = ("comp", comp["key"])
                w = 1.0 if comp["primary"] else SECONDARY_WEIGHT
                old = self.graph.get_edge_data(node, ("proc", pid), {}).get("weight", 0.0)
                self.graph.add_edge(node, ("proc", pid), weight=max(w, old))
                names = [comp["name"], *comp["aliases"]] if comp["source"] == "llm" else [comp["name"]]
                self.aliases.setdefault(comp["key"], []).extend(
                    frozenset(tokenize(humanize(n))) for n in names if tokenize(n))
                if comp["source"] == "llm" and pvecs is not None and i < len(pvecs):
                    vecs.setdefault(comp["key"], []).append(pvecs[i])
        n_procs = max(len(docs), 1)
        for node in [n for n in self.graph if n[0] == "comp"]:
            members = list(self.graph.neighbors(node))
            if len(members) > n_procs / 2:  # on most procedures: a collection name, not a component
                self.graph.remove_node(node)
                continue
            titles = [_title_vector(d) for d in docs if ("proc", d.proc.doc_id) in members]
            titles = [t for t in titles if t is not None]
            if titles:
                centroid = np.mean(titles, axis=0)
                vecs.setdefault(node[1], []).append(centroid / max(float(np.linalg.norm(centroid)), 1e-12))
        self.keys = sorted(k for _, k in (n for n in self.graph if n[0] == "comp"))
        self.vectors = [np.stack(vecs[k]).astype(np.float32) if k in vecs else None for k in self.keys]

    def link(self, query: Query, cfg: ExpertConfig) -> dict[str, float]:
        """Component key -> link confidence: lexical (1.0) or the best profile cosine, top few only."""
        links = {k: 1.0 for k in self.keys if any(a and a <= query.tokens for a in self.aliases.get(k, []))}
        sims = [(float((v @ query.vector).max()), k) for k, v in zip(self.keys, self.vectors) if v is not None]
        sims.sort(reverse=True)
        if sims:
            top = sims[0][0]
            for s, k in sims[:cfg.component_links]:
                if s >= cfg.component_min_sim and s >= top - cfg.component_margin:
                    links[k] = max(links.get(k, 0.0), s)
        return links

    def score(self, query: Query, cfg: ExpertConfig) -> tuple[dict[str, float], dict[str, float]]:
        """(procedure -> summed confidence of its linked components, links); procedures with none are absent."""
        links = self.link(query, cfg)
        out: dict[str, float] = {}
        for key, conf in links.items():
            for _, proc, data in self.graph.edges(("comp", key), data=True):
                out[proc[1]] = out.get(proc[1], 0.0) + conf * data["weight"]
        return out, links


def _title_vector(doc: DocArtifacts) -> np.ndarray | None:
    """The vector of the title node of the causal part (embedded at index time: no extra encoder call)."""
    mat = doc.vectors.get("causal")
    title = doc.derived.get("title_node")
    if title is None:
        title = next((i for i, n in enumerate(doc.causal["nodes"]) if n["text"] == humanize(doc.proc.title)), -1)
        doc.derived["title_node"] = title
    return mat[title] if mat is not None and 0 <= title < len(mat) else None
